using Microsoft.Extensions.Options;

namespace Ion.Api;

/// <summary>The <c>Ion:Feedback</c> section.</summary>
public sealed class FeedbackOptions
{
    public const string Section = "Ion:Feedback";

    /// <summary>A second token that opens only <c>/v1/feedback/*</c>, as the password of HTTP basic authentication (any
    /// user name) or as a bearer token: an SNS HTTP(S) subscription cannot add a header, but takes
    /// <c>https://ion:TOKEN@host/v1/feedback/ses</c>. <c>Ion:Api:Token</c> opens these routes too.</summary>
    public string? Token { get; set; }
}

internal sealed class FeedbackOptionsValidator : IValidateOptions<FeedbackOptions>
{
    public ValidateOptionsResult Validate(string? name, FeedbackOptions options) =>
        string.IsNullOrEmpty(options.Token) || options.Token.Length >= 16
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail("Ion:Feedback:Token must be at least 16 characters");
}
