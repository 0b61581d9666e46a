using Ion.Messages;

namespace Ion.Tests.Messages;

public class MessageRulesTests
{
    [Fact]
    public void Defaults_CapAttachmentsBelowTenMegabytes()
    {
        var rules = new MessageRules("noreply@example.com", []);
        Assert.Equal(7 * 1024 * 1024, rules.MaxAttachmentBytes);
    }
}
