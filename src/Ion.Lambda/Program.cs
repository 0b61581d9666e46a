using Ion.Lambda;

// The Lambda's bootstrap: start (settings, the SMTP password from SSM, ion's services), then answer invocations until
// Lambda freezes or stops the instance. A start that fails is reported to Lambda as an init error.
using var runtime = LambdaRuntime.FromEnvironment();
LambdaFunction function;
try
{
    function = LambdaFunction.Start(await LambdaFunction.ConfigurationAsync(CancellationToken.None));
}
catch (Exception error)
{
    await Console.Error.WriteLineAsync($"ion lambda: {error.Message}");
    await runtime.InitFailedAsync(error, CancellationToken.None);
    return 1;
}
await using (function)
    await function.RunAsync(runtime, CancellationToken.None);
return 0;
