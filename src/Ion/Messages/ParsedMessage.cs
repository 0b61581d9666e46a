namespace Ion.Messages;

/// <summary>What a raw message turned out to be. Invalid input is a value, not an exception.</summary>
public abstract record ParsedMessage;

public sealed record SendRequest(EmailMessage Email) : ParsedMessage;

/// <summary>The <c>redrive</c> action: move dead letters back (all, or those with <see cref="Ids"/>).</summary>
public sealed record RedriveRequest(IReadOnlyList<string>? Ids) : ParsedMessage;

/// <summary><see cref="Field"/> names the offending JSON field (or null for the whole document);
/// <see cref="Reason"/> is the stored and returned text, always starting with <c>invalid: </c>.</summary>
public sealed record InvalidMessage(string? Field, string Reason) : ParsedMessage;
