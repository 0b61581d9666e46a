using System.Text;
using System.Text.Json.Nodes;
using Ion.Messages;

namespace Ion.Tests.Messages;

public class MessageParserTests
{
    static readonly MessageRules Rules = new("noreply@example.com", ["news@example.com", "@mail.example.org"]);

    // Marks a field to leave out of the message Send builds.
    static readonly JsonNode Absent = JsonValue.Create("(absent)");

    // A valid send message with some fields changed: a JsonNode sets the field (null writes JSON
    // null), Absent removes it.
    static string Send(params (string Field, JsonNode? Value)[] changes)
    {
        var message = new JsonObject
        {
            ["action"] = "send",
            ["recipient"] = "a@example.com",
            ["subject"] = "Hi",
            ["body_text"] = "plain",
        };
        foreach (var (field, value) in changes)
        {
            if (ReferenceEquals(value, Absent))
                message.Remove(field);
            else
                message[field] = value?.DeepClone();
        }
        return message.ToJsonString();
    }

    static JsonArray Strings(IEnumerable<string> items) => [.. items.Select(item => (JsonNode?)item)];

    static JsonArray Addresses(int count, string prefix = "r") =>
        Strings(Enumerable.Range(0, count).Select(i => $"{prefix}{i}@example.com"));

    static JsonObject Attachment(string fileName = "a.txt", string contentType = "text/plain", string base64 = "aGVsbG8=") =>
        new() { ["filename"] = fileName, ["content_type"] = contentType, ["content_base64"] = base64 };

    static EmailMessage ParseSend(string json, MessageRules? rules = null)
    {
        var parsed = MessageParser.Parse(json, rules ?? Rules);
        if (parsed is InvalidMessage invalid)
            Assert.Fail($"expected a valid send message, got {invalid}");
        return Assert.IsType<SendRequest>(parsed).Email;
    }

    static InvalidMessage ParseInvalid(string json, MessageRules? rules = null)
    {
        var invalid = Assert.IsType<InvalidMessage>(MessageParser.Parse(json, rules ?? Rules));
        Assert.StartsWith("invalid: ", invalid.Reason, StringComparison.Ordinal);
        return invalid;
    }

    [Fact]
    public void IgnoreSuppression_IsReadAsABoolean_FalseWhenLeftOut_AndAnythingElseIsRefused()
    {
        Assert.False(ParseSend(Send()).IgnoreSuppression);
        Assert.True(ParseSend(Send(("ignore_suppression", true))).IgnoreSuppression);
        Assert.False(ParseSend(Send(("ignore_suppression", false))).IgnoreSuppression);
        var invalid = ParseInvalid(Send(("ignore_suppression", "yes")));
        Assert.Equal("ignore_suppression", invalid.Field);
        Assert.Equal("invalid: ignore_suppression: must be true or false, not a string", invalid.Reason);
    }

    [Fact]
    public void OriginalSendMessage_ParsesExactlyAsWritten()
    {
        var email = ParseSend("""{"action":"send","recipient":"a@example.com","subject":"Hi","body_text":"plain","body_html":"<p>html</p>"}""");

        Assert.Equal(["a@example.com"], email.To);
        Assert.Equal("Hi", email.Subject);
        Assert.Equal("plain", email.BodyText);
        Assert.Equal("<p>html</p>", email.BodyHtml);
        Assert.Null(email.Id);
        Assert.Null(email.From);
        Assert.Null(email.ReplyTo);
        Assert.Empty(email.Cc);
        Assert.Empty(email.Bcc);
        Assert.Empty(email.Headers);
        Assert.Empty(email.Attachments);
        Assert.Empty(email.Tags);
    }

    [Fact]
    public void OriginalRedriveMessage_RedrivesEverything()
    {
        var redrive = Assert.IsType<RedriveRequest>(MessageParser.Parse("""{"action":"redrive"}""", Rules));

        Assert.Null(redrive.Ids);
    }

    [Fact]
    public void Redrive_WithIds_RedrivesThoseIds()
    {
        var redrive = Assert.IsType<RedriveRequest>(MessageParser.Parse("""{"action":"redrive","ids":["0198a1b2c3","order-42"]}""", Rules));

        Assert.Equal(["0198a1b2c3", "order-42"], redrive.Ids);
    }

    [Fact]
    public void Redrive_WithNullIds_RedrivesEverything()
    {
        var redrive = Assert.IsType<RedriveRequest>(MessageParser.Parse("""{"action":"redrive","ids":null}""", Rules));

        Assert.Null(redrive.Ids);
    }

    [Fact]
    public void EveryOptionalField_IsRead()
    {
        var json = """
            {
              "action": "send",
              "id": "order-42:welcome@shop/v=1+2_x.y",
              "recipient": "a@example.com",
              "to": ["b@example.com", "c@example.com"],
              "cc": ["d@example.com"],
              "bcc": ["e@example.com"],
              "from": "news@example.com",
              "reply_to": "support@example.com",
              "subject": "Grüße ✓",
              "body_text": "plain",
              "body_html": "<p>html</p>",
              "headers": { "X-Campaign": "spring", "x-trace": "" },
              "attachments": [
                { "filename": "report.pdf", "content_type": "application/pdf", "content_base64": "JVBERi0=" },
                { "filename": "notes.txt", "content_type": "Text/Plain; charset=utf-8; name=other.exe", "content_base64": "aGVs\nbG8=" }
              ],
              "tags": ["welcome", "spring-2025"]
            }
            """;

        var email = ParseSend(json);

        Assert.Equal("order-42:welcome@shop/v=1+2_x.y", email.Id);
        Assert.Equal(["a@example.com", "b@example.com", "c@example.com"], email.To);
        Assert.Equal(["d@example.com"], email.Cc);
        Assert.Equal(["e@example.com"], email.Bcc);
        Assert.Equal("news@example.com", email.From);
        Assert.Equal("support@example.com", email.ReplyTo);
        Assert.Equal("Grüße ✓", email.Subject);
        Assert.Equal("plain", email.BodyText);
        Assert.Equal("<p>html</p>", email.BodyHtml);
        Assert.Equal([new("X-Campaign", "spring"), new("x-trace", "")], email.Headers);
        Assert.Equal(2, email.Attachments.Count);
        Assert.Equal("report.pdf", email.Attachments[0].FileName);
        Assert.Equal("application/pdf", email.Attachments[0].ContentType);
        Assert.Equal("%PDF-"u8.ToArray(), email.Attachments[0].Content);
        Assert.Equal("notes.txt", email.Attachments[1].FileName);
        Assert.Equal("text/plain; charset=utf-8", email.Attachments[1].ContentType);
        Assert.Equal("hello"u8.ToArray(), email.Attachments[1].Content);
        Assert.Equal(["welcome", "spring-2025"], email.Tags);
    }

    [Fact]
    public void NullOptionalFields_CountAsAbsent()
    {
        var json = Send(
            ("id", null), ("to", null), ("cc", null), ("bcc", null), ("from", null), ("reply_to", null),
            ("body_html", null), ("headers", null), ("attachments", null), ("tags", null));

        var email = ParseSend(json);

        Assert.Equal(["a@example.com"], email.To);
        Assert.Null(email.Id);
        Assert.Null(email.From);
        Assert.Null(email.BodyHtml);
        Assert.Empty(email.Headers);
    }

    public static TheoryData<string> ValidMessages => new()
    {
        // Each is one way a send message may legitimately look.
        Send(("recipient", Absent), ("to", Strings(["b@example.com"]))),
        Send(("to", Strings([]))),
        Send(("body_text", Absent), ("body_html", "<p>only html</p>")),
        Send(("body_html", "")),
        Send(("from", "noreply@example.com")),
        Send(("from", "NoReply@Example.com")),
        Send(("from", "NEWS@example.com")),
        Send(("from", "anyone@mail.example.org")),
        Send(("from", "anyone@MAIL.example.org")),
        Send(("recipient", "first.last+tag@sub.example.co.uk")),
        Send(("recipient", "o'brien!#$%&*=?^_`{|}~-/@example.com")),
        Send(("recipient", "a@bücher.de")),
        // A non-ASCII local part is a valid address (RFC 6531); it is sent where the relay offers SMTPUTF8.
        Send(("recipient", "ü@example.com")),
        Send(("recipient", "root@localhost")),
        Send(("to", Addresses(MessageRules.MaxRecipients - 1))),
        Send(("cc", Addresses(25)), ("bcc", Addresses(24))),
        Send(("subject", new string('s', MessageRules.MaxSubjectLength))),
        Send(("subject", "tab\tinside")),
        // The original Lambda sent whatever subject it was given, an empty one included.
        Send(("subject", "")),
        Send(("id", new string('a', 128))),
        Send(("headers", new JsonObject(Enumerable.Range(0, MessageRules.MaxHeaders).Select(i => KeyValuePair.Create($"X-H{i}", (JsonNode?)"v"))))),
        Send(("attachments", new JsonArray(Enumerable.Range(0, MessageRules.MaxAttachments).Select(_ => (JsonNode?)Attachment()).ToArray()))),
        Send(("attachments", new JsonArray(Attachment(base64: "")))),
        Send(("attachments", new JsonArray(Attachment(fileName: "Bericht für März.pdf", contentType: "application/pdf")))),
        Send(("tags", Strings(Enumerable.Range(0, MessageRules.MaxTags).Select(i => $"t{i}")))),
        Send(("tags", Strings([new string('t', 64)]))),
    };

    [Theory]
    [MemberData(nameof(ValidMessages))]
    public void ValidMessage_IsASendRequest(string json)
    {
        ParseSend(json);
    }

    public static TheoryData<string, string?, string> InvalidMessages => new()
    {
        // json, the field named, words the reason must contain
        { "bob", null, "not JSON: " },
        { "", null, "not JSON: the message is empty" },
        { "{\"action\":\"send\",}", null, "not JSON: " },
        { "{/* comment */\"action\":\"redrive\"}", null, "not JSON: " },
        { "[]", null, "the message must be a JSON object, not an array" },
        { "\"send\"", null, "the message must be a JSON object, not a string" },
        { "42", null, "the message must be a JSON object, not a number" },
        { "null", null, "the message must be a JSON object, not null" },
        { "{}", "action", "invalid: action: is required" },
        { "{\"action\":null}", "action", "invalid: action: is required" },
        { "{\"action\":\"Send\"}", "action", "must be 'send' or 'redrive', not 'Send'" },
        { "{\"action\":1}", "action", "invalid: action: must be a string, not a number" },
        { "{\"action\":\"redrive\",\"recipient\":\"a@example.com\"}", "recipient", "invalid: recipient: not allowed with action 'redrive'" },
        { "{\"action\":\"redrive\",\"ids\":\"a\"}", "ids", "must be an array of message ids, not a string" },
        { "{\"action\":\"redrive\",\"ids\":[]}", "ids", "must not be empty" },
        { "{\"action\":\"redrive\",\"ids\":[\"ok\",\"\"]}", "ids[1]", "invalid: ids[1]: must not be empty" },
        { "{\"action\":\"redrive\",\"ids\":[\"a b\"]}", "ids[0]", "contains a space" },
        { "{\"action\":\"redrive\",\"ids\":[7]}", "ids[0]", "must be a string, not a number" },
        { Send(("bodytext", "plain")), "bodytext", "invalid: unknown field 'bodytext' (did you mean 'body_text'?)" },
        { Send(("Subject", "Hi")), "Subject", "unknown field 'Subject' (did you mean 'subject'?)" },
        { Send(("priority", "high")), "priority", "invalid: unknown field 'priority'" },
        { Send(("bodytext", null)), "bodytext", "unknown field 'bodytext'" },
        { "{\"action\":\"send\",\"subject\":\"a\",\"subject\":\"b\"}", "subject", "invalid: duplicate field 'subject'" },
        { Send(("id", "")), "id", "invalid: id: must not be empty" },
        { Send(("id", new string('a', 129))), "id", "is longer than 128 characters" },
        { Send(("id", "a\nb")), "id", "contains U+000A" },
        { Send(("id", "a#b")), "id", "contains '#'" },
        { Send(("id", 5)), "id", "must be a string, not a number" },
        { Send(("recipient", "bob")), "recipient", "invalid: recipient: 'bob' is not an email address" },
        { Send(("recipient", "Bob <bob@example.com>")), "recipient", "is not an email address" },
        { Send(("recipient", "bob@example.com (Bob)")), "recipient", "is not an email address" },
        { Send(("recipient", "a@example.com, b@example.com")), "recipient", "is not an email address" },
        { Send(("recipient", "a@example.com;b@example.com")), "recipient", "is not an email address" },
        { Send(("recipient", "team: a@example.com;")), "recipient", "is not an email address" },
        { Send(("recipient", "\"a b\"@example.com")), "recipient", "is not an email address" },
        { Send(("recipient", "a@[127.0.0.1]")), "recipient", "is not an email address" },
        { Send(("recipient", " a@example.com")), "recipient", "is not an email address" },
        { Send(("recipient", "a@example.com.")), "recipient", "is not an email address" },
        { Send(("recipient", "a..b@example.com")), "recipient", "is not an email address" },
        { Send(("recipient", "a@-example.com")), "recipient", "is not an email address" },
        { Send(("recipient", "a@exa_mple.com")), "recipient", "is not an email address" },
        { Send(("recipient", "a@b@example.com")), "recipient", "is not an email address" },
        { Send(("recipient", "@example.com")), "recipient", "is not an email address" },
        { Send(("to", Strings(["b@example.com", "a@xn--bcher-2pa.de"]))), "to[1]", "is not an email address: the domain is not a valid internationalised domain name" },
        { Send(("recipient", "a@exa_mple.com")), "recipient", "is not an email address: the domain is not a valid domain name" },
        { Send(("recipient", "ö" + new string('a', 63) + "@example.com")), "recipient", "the local part is longer than 64 octets" },
        { Send(("recipient", "a@")), "recipient", "is not an email address" },
        { Send(("recipient", new string('a', 65) + "@example.com")), "recipient", "is not an email address" },
        { Send(("recipient", "a@example.com\r\nBcc: evil@example.net")), "recipient", "invalid: recipient: contains a line break" },
        { Send(("recipient", "a@example.com\nBcc: evil@example.net")), "recipient", "contains a line break" },
        { Send(("recipient", 42)), "recipient", "invalid: recipient: must be a string, not a number" },
        { Send(("recipient", Strings(["a@example.com"]))), "recipient", "must be a string, not an array" },
        { Send(("recipient", Absent)), "recipient/to", "at least one recipient is required" },
        { Send(("recipient", Absent), ("to", Strings([]))), "recipient/to", "at least one recipient is required" },
        { Send(("recipient", Absent), ("cc", Strings(["a@example.com"]))), "recipient/to", "at least one recipient is required" },
        { Send(("to", "a@x")), "to", "invalid: to: must be an array of email addresses, not a string" },
        { Send(("to", Strings(["b@example.com", "bob"]))), "to[1]", "invalid: to[1]: 'bob' is not an email address" },
        { Send(("to", new JsonArray((JsonNode?)null))), "to[0]", "must be a string, not null" },
        { Send(("cc", Strings(["x\r\n@example.com"]))), "cc[0]", "contains a line break" },
        { Send(("bcc", new JsonObject())), "bcc", "must be an array of email addresses, not an object" },
        { Send(("cc", Addresses(MessageRules.MaxRecipients + 1))), "cc", "more than 50 recipients" },
        { Send(("to", Addresses(30)), ("bcc", Addresses(30, "b"))), "recipient/to/cc/bcc", "more than 50 recipients in total" },
        { Send(("from", "evil@example.net")), "from", "invalid: from: 'evil@example.net' is not an allowed sender" },
        { Send(("from", "someone@example.com")), "from", "is not an allowed sender" },
        { Send(("from", "x@sub.mail.example.org")), "from", "is not an allowed sender" },
        { Send(("from", "News <news@example.com>")), "from", "is not an email address" },
        { Send(("from", "news@example.com\r\nBcc: evil@example.net")), "from", "invalid: from: contains a line break" },
        { Send(("from", true)), "from", "must be a string, not a boolean" },
        { Send(("reply_to", "nope")), "reply_to", "'nope' is not an email address" },
        { Send(("reply_to", Strings(["a@example.com"]))), "reply_to", "must be a string, not an array" },
        { Send(("subject", Absent)), "subject", "invalid: subject: is required" },
        { Send(("subject", null)), "subject", "invalid: subject: is required" },
        { Send(("subject", "Hi\r\nBcc: evil@example.net")), "subject", "invalid: subject: contains a line break" },
        { Send(("subject", "Hi\rthere")), "subject", "contains a line break" },
        { Send(("subject", "a\u0000b")), "subject", "contains the control character U+0000" },
        { Send(("subject", new string('s', MessageRules.MaxSubjectLength + 1))), "subject", "is longer than 998 characters" },
        { Send(("subject", 42)), "subject", "must be a string, not a number" },
        { Send(("body_text", Absent)), "body_text/body_html", "invalid: body_text/body_html: at least one is required" },
        { Send(("body_text", "")), "body_text/body_html", "at least one is required" },
        { Send(("body_text", ""), ("body_html", "")), "body_text/body_html", "at least one is required" },
        { Send(("body_text", 1)), "body_text", "must be a string, not a number" },
        { Send(("body_html", new JsonArray())), "body_html", "must be a string, not an array" },
        { Send(("headers", new JsonArray())), "headers", "must be an object of header names and values, not an array" },
        { Send(("headers", new JsonObject { ["Subject"] = "x" })), "headers", "'Subject' is not allowed: only custom X- headers" },
        { Send(("headers", new JsonObject { ["Bcc"] = "evil@example.net" })), "headers", "only custom X- headers" },
        { Send(("headers", new JsonObject { ["X-"] = "x" })), "headers", "only custom X- headers" },
        { Send(("headers", new JsonObject { ["X-Ion-Id"] = "x" })), "headers", "reserved for ion" },
        { Send(("headers", new JsonObject { ["x-ion-tags"] = "x" })), "headers", "reserved for ion" },
        { Send(("headers", new JsonObject { ["X-A B"] = "x" })), "headers", "'X-A B' is not a header name" },
        { Send(("headers", new JsonObject { ["X-A:B"] = "x" })), "headers", "is not a header name" },
        { Send(("headers", new JsonObject { ["X-A\r\nBcc"] = "x" })), "headers", "'X-A\\r\\nBcc' is not a header name" },
        { Send(("headers", new JsonObject { ["X-Grüße"] = "x" })), "headers", "is not a header name" },
        { Send(("headers", new JsonObject { ["X-" + new string('a', 75)] = "x" })), "headers", "is longer than 76 characters" },
        { Send(("headers", new JsonObject { ["X-A"] = "v\r\nBcc: evil@example.net" })), "headers.X-A", "invalid: headers.X-A: contains a line break" },
        { Send(("headers", new JsonObject { ["X-A"] = "v\u0007" })), "headers.X-A", "contains the control character U+0007" },
        { Send(("headers", new JsonObject { ["X-A"] = new string('v', 999) })), "headers.X-A", "is longer than 998 characters" },
        { Send(("headers", new JsonObject { ["X-A"] = 1 })), "headers.X-A", "must be a string, not a number" },
        { Send(("headers", new JsonObject { ["X-A"] = null })), "headers.X-A", "must be a string, not null" },
        { Send(("headers", new JsonObject { ["X-A"] = "1", ["x-a"] = "2" })), "headers", "'x-a' appears more than once" },
        { Send(("headers", new JsonObject(Enumerable.Range(0, MessageRules.MaxHeaders + 1).Select(i => KeyValuePair.Create($"X-H{i}", (JsonNode?)"v"))))), "headers", "more than 20 headers" },
        { Send(("attachments", Attachment())), "attachments", "must be an array of attachments, not an object" },
        { Send(("attachments", Strings(["a.txt"]))), "attachments[0]", "must be an object with filename, content_type and content_base64, not a string" },
        { Send(("attachments", new JsonArray(Enumerable.Range(0, MessageRules.MaxAttachments + 1).Select(_ => (JsonNode?)Attachment()).ToArray()))), "attachments", "more than 20 attachments" },
        { Send(("attachments", new JsonArray(new JsonObject { ["content_type"] = "text/plain", ["content_base64"] = "" }))), "attachments[0].filename", "invalid: attachments[0].filename: is required" },
        { Send(("attachments", new JsonArray(new JsonObject { ["filename"] = "a", ["content_base64"] = "" }))), "attachments[0].content_type", "is required" },
        { Send(("attachments", new JsonArray(new JsonObject { ["filename"] = "a", ["content_type"] = "text/plain" }))), "attachments[0].content_base64", "is required" },
        { Send(("attachments", new JsonArray(new JsonObject { ["filename"] = "a", ["content_type"] = "text/plain", ["content_base64"] = null }))), "attachments[0].content_base64", "is required" },
        { Send(("attachments", new JsonArray(Attachment(), new JsonObject { ["filename"] = "a", ["content_type"] = "text/plain", ["content_base64"] = "", ["size"] = 3 }))), "attachments[1]", "invalid: attachments[1]: unknown field 'size'" },
        { Send(("attachments", new JsonArray(new JsonObject { ["fileName"] = "a", ["content_type"] = "text/plain", ["content_base64"] = "" }))), "attachments[0]", "unknown field 'fileName' (did you mean 'filename'?)" },
        { Send(("attachments", new JsonArray(Attachment(fileName: "../etc/passwd")))), "attachments[0].filename", "is not a plain file name" },
        { Send(("attachments", new JsonArray(Attachment(fileName: "dir\\a.txt")))), "attachments[0].filename", "is not a plain file name" },
        { Send(("attachments", new JsonArray(Attachment(fileName: "..")))), "attachments[0].filename", "is not a plain file name" },
        { Send(("attachments", new JsonArray(Attachment(fileName: "a\r\nContent-Type: text/html")))), "attachments[0].filename", "contains a line break" },
        { Send(("attachments", new JsonArray(Attachment(fileName: "")))), "attachments[0].filename", "must not be empty" },
        { Send(("attachments", new JsonArray(Attachment(fileName: new string('f', 256))))), "attachments[0].filename", "is longer than 255 characters" },
        { Send(("attachments", new JsonArray(Attachment(contentType: "pdf")))), "attachments[0].content_type", "'pdf' is not a MIME type (type/subtype)" },
        { Send(("attachments", new JsonArray(Attachment(contentType: "text/")))), "attachments[0].content_type", "is not a MIME type" },
        { Send(("attachments", new JsonArray(Attachment(contentType: "multipart/mixed")))), "attachments[0].content_type", "cannot be an attachment's type" },
        { Send(("attachments", new JsonArray(Attachment(contentType: "message/rfc822")))), "attachments[0].content_type", "cannot be an attachment's type" },
        { Send(("attachments", new JsonArray(Attachment(contentType: "text/plain\r\nX-Evil: 1")))), "attachments[0].content_type", "contains a line break" },
        { Send(("attachments", new JsonArray(Attachment(contentType: "text/plain garbage")))), "attachments[0].content_type", "is not a MIME type" },
        { Send(("attachments", new JsonArray(Attachment(contentType: "text/plain; charset=\"utf 8\"")))), "attachments[0].content_type", "'utf 8' is not a charset name" },
        { Send(("attachments", new JsonArray(Attachment(base64: "not base64!")))), "attachments[0].content_base64", "is not valid base64" },
        { Send(("attachments", new JsonArray(Attachment(base64: "aGVsbG8")))), "attachments[0].content_base64", "is not valid base64" },
        { Send(("attachments", new JsonArray(Attachment(base64: "aGVs_G8-")))), "attachments[0].content_base64", "is not valid base64" },
        { Send(("tags", "welcome")), "tags", "must be an array of strings, not a string" },
        { Send(("tags", Strings([""]))), "tags[0]", "invalid: tags[0]: must not be empty" },
        { Send(("tags", Strings(["ok", new string('t', 65)]))), "tags[1]", "is longer than 64 characters" },
        { Send(("tags", Strings(["a\nb"]))), "tags[0]", "contains a line break" },
        { Send(("tags", new JsonArray(1))), "tags[0]", "must be a string, not a number" },
        { Send(("tags", Strings(Enumerable.Range(0, MessageRules.MaxTags + 1).Select(i => $"t{i}")))), "tags", "more than 10 tags" },
    };

    [Theory]
    [MemberData(nameof(InvalidMessages))]
    public void InvalidMessage_NamesTheFieldAndTheProblem(string json, string? field, string words)
    {
        var invalid = ParseInvalid(json);

        Assert.Equal(field, invalid.Field);
        Assert.Contains(words, invalid.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryAddress_IsParsedIntoCanonicalForm()
    {
        var rules = Rules with { AllowedSenders = ["@bücher.de"] };
        var json = Send(
            ("recipient", "bob@BÜCHER.DE"), ("to", Strings(["a@ｅxample.com", "jo\u0308rg@Example.COM"])),
            ("cc", Strings(["Carol@XN--BCHER-KVA.DE"])), ("bcc", Strings(["dave@faß.de"])),
            ("from", "News@Bücher.de"), ("reply_to", "help@ＢÜＣＨＥＲ.de"));

        var email = ParseSend(json, rules);

        Assert.Equal(["bob@xn--bcher-kva.de", "a@example.com", "jörg@example.com"], email.To);
        Assert.Equal(["Carol@xn--bcher-kva.de"], email.Cc);
        Assert.Equal(["dave@xn--fa-hia.de"], email.Bcc);
        Assert.Equal("News@xn--bcher-kva.de", email.From);
        Assert.Equal("help@xn--bcher-kva.de", email.ReplyTo);
    }

    [Fact]
    public void ALabelRecipient_IsAcceptedUnchanged()
    {
        var email = ParseSend(Send(("recipient", "bob@xn--bcher-kva.de")));

        Assert.Equal(["bob@xn--bcher-kva.de"], email.To);
    }

    [Fact]
    public void InvalidALabel_IsRefusedAsNotAValidInternationalisedDomainName()
    {
        var invalid = ParseInvalid(Send(("recipient", "bob@xn--bcher-2pa.de")));

        Assert.Equal("recipient", invalid.Field);
        Assert.Equal(
            "invalid: recipient: 'bob@xn--bcher-2pa.de' is not an email address: the domain is not a valid internationalised domain name",
            invalid.Reason);
    }

    [Fact]
    public void NonAsciiLocalPart_IsAcceptedAsARecipient_AndNeedsSmtpUtf8()
    {
        var email = ParseSend(Send(("recipient", "jörg@example.com"), ("cc", Strings(["bob@bücher.de"]))));

        Assert.Equal(["jörg@example.com"], email.To);
        Assert.True(Ion.Messages.Addresses.NeedsSmtpUtf8(email.To[0]));
        Assert.False(Ion.Messages.Addresses.NeedsSmtpUtf8(email.Cc[0]));
    }

    [Theory]
    [InlineData("from")]
    [InlineData("reply_to")]
    public void NonAsciiLocalPart_IsRefusedAsFromOrReplyTo(string field)
    {
        // mail.example.org is an allowed domain, so only the local part is in the way.
        var invalid = ParseInvalid(Send((field, "jörg@mail.example.org")));

        Assert.Equal(field, invalid.Field);
        Assert.StartsWith($"invalid: {field}: 'jörg@mail.example.org': its local part is not ASCII", invalid.Reason, StringComparison.Ordinal);
        Assert.Contains("SMTPUTF8", invalid.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("@bücher.de", "x@XN--BCHER-KVA.DE")]
    [InlineData("@BÜCHER.DE", "x@bücher.de")]
    [InlineData("@xn--bcher-kva.de", "x@ｂücher.de")]
    [InlineData("news@bücher.de", "NEWS@xn--bcher-kva.de")]
    [InlineData("news@XN--BCHER-KVA.DE", "news@Bücher.de")]
    public void AllowedSenders_MatchAcrossULabelAndALabelForms(string allowed, string from)
    {
        var rules = Rules with { AllowedSenders = [allowed] };

        var email = ParseSend(Send(("from", from)), rules);

        Assert.EndsWith("@xn--bcher-kva.de", email.From, StringComparison.Ordinal);
    }

    [Fact]
    public void DefaultSender_MatchesAcrossULabelAndALabelForms()
    {
        var rules = Rules with { DefaultSender = "noreply@BÜCHER.DE", AllowedSenders = [] };

        var email = ParseSend(Send(("from", "noreply@xn--bcher-kva.de")), rules);

        Assert.Equal("noreply@xn--bcher-kva.de", email.From);
    }

    [Fact]
    public void SenderOfAnotherDomain_IsRefused_QuotingWhatWasGiven()
    {
        var rules = Rules with { AllowedSenders = ["@bücher.de"] };

        var invalid = ParseInvalid(Send(("from", "x@BÜCHER.COM")), rules);

        Assert.Equal("invalid: from: 'x@BÜCHER.COM' is not an allowed sender", invalid.Reason);
    }

    [Fact]
    public void Attachments_LargerTogetherThanTheLimit_AreInvalid()
    {
        var rules = Rules with { MaxAttachmentBytes = 5 };
        var fits = Send(("attachments", new JsonArray(Attachment(base64: "aGVsbG8=")))); // 5 bytes
        var tooBig = Send(("attachments", new JsonArray(Attachment(base64: "aGVs"), Attachment(base64: "aGVs")))); // 3 + 3 bytes

        Assert.Equal(5, ParseSend(fits, rules).Attachments[0].Content.Length);
        var invalid = ParseInvalid(tooBig, rules);
        Assert.Equal("attachments", invalid.Field);
        Assert.Equal("invalid: attachments: more than 5 bytes in total once decoded", invalid.Reason);
    }

    public static TheoryData<string> HostileInputs => new()
    {
        "{",
        "}",
        "nul",
        "\0",
        "\ufeff{\"action\":\"redrive\"}",
        // A lone surrogate in the text itself, and escaped as a value and as a field name.
        "{\"action\":\"send\",\"subject\":\"\ud800\"}",
        "{\"action\":\"send\",\"recipient\":\"a@example.com\",\"subject\":\"\\ud800\",\"body_text\":\"x\"}",
        "{\"action\":\"redrive\",\"ids\":[\"\\udc00\"]}",
        "{\"\\ud800\":1,\"action\":\"send\"}",
        "{\"action\":\"send\",\"headers\":{\"\\ud800\":\"x\"},\"recipient\":\"a@example.com\",\"subject\":\"x\",\"body_text\":\"x\"}",
        new string('[', 100) + new string(']', 100),
        "{\"action\":\"send\",\"tags\":" + new string('[', 100) + new string(']', 100) + "}",
        "{\"action\":" + new string('{', 100) + new string('}', 100) + "}",
        "{\"action\":1e999999}",
        "{\"action\":\"send\",\"recipient\":123456789012345678901234567890123456789,\"subject\":\"x\",\"body_text\":\"x\"}",
        "{\"action\":\"send\",\"recipient\":\"a@example.com\",\"subject\":-0.0e-99999,\"body_text\":\"x\"}",
        "{\"action\":\"send\",\"recipient\":\"a@example.com\",\"subject\":\"x\",\"body_text\":\"x\",\"headers\":{\"X-A\":{}}}",
        "{\"action\":\"send\",\"recipient\":\"a@example.com\",\"subject\":\"x\",\"body_text\":\"x\",\"attachments\":[[[]]]}",
        "{\"action\":\"send\",\"recipient\":\"\\u202ea@example.com\",\"subject\":\"x\",\"body_text\":\"x\"}",
        "{\"action\":\"send\",\"recipient\":\"a@example.com\",\"subject\":\"x\\u0085y\",\"body_text\":\"x\"}",
    };

    [Theory]
    [MemberData(nameof(HostileInputs))]
    public void HostileInput_IsInvalidNotAnException(string json)
    {
        var invalid = ParseInvalid(json);

        AssertSafeToStore(invalid);
    }

    [Fact]
    public void NullInput_IsInvalidNotAnException()
    {
        var invalid = ParseInvalid(null!);

        Assert.Null(invalid.Field);
        Assert.Contains("not JSON", invalid.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void HugeSubject_IsRefusedWithoutEchoingIt()
    {
        var huge = new string('s', 5 * 1024 * 1024);

        var invalid = ParseInvalid(Send(("subject", huge)));

        Assert.Equal("subject", invalid.Field);
        Assert.Contains("is longer than 998 characters", invalid.Reason, StringComparison.Ordinal);
        AssertSafeToStore(invalid);
    }

    [Fact]
    public void HugeRecipient_IsRefusedWithoutEchoingIt()
    {
        var huge = new string('a', 5 * 1024 * 1024) + "\r\n";

        var invalid = ParseInvalid(Send(("to", Strings([huge]))));

        Assert.Equal("to[0]", invalid.Field);
        AssertSafeToStore(invalid);
    }

    [Fact]
    public void HugeBadRecipient_IsQuotedOnlyInPart()
    {
        var huge = new string('a', 5 * 1024 * 1024);

        var invalid = ParseInvalid(Send(("recipient", huge)));

        Assert.StartsWith("invalid: recipient: 'aaaa", invalid.Reason, StringComparison.Ordinal);
        Assert.Contains("…' is not an email address", invalid.Reason, StringComparison.Ordinal);
        AssertSafeToStore(invalid);
    }

    [Fact]
    public void HugeUnknownFieldName_IsQuotedOnlyInPart()
    {
        var name = new string('n', 5 * 1024 * 1024);

        var invalid = ParseInvalid(Send((name, 1)));

        Assert.NotNull(invalid.Field);
        Assert.True(invalid.Field.Length <= 101, $"field is {invalid.Field.Length} characters");
        AssertSafeToStore(invalid);
    }

    [Fact]
    public void HugeAttachmentText_IsMeasuredOnceDecoded()
    {
        // 5 MB of base64 is about 3.75 MB decoded: more than the limit given here.
        var base64 = Convert.ToBase64String(new byte[3_932_160]);
        var rules = Rules with { MaxAttachmentBytes = 1024 * 1024 };

        var invalid = ParseInvalid(Send(("attachments", new JsonArray(Attachment(base64: base64)))), rules);

        Assert.Equal("attachments", invalid.Field);
        AssertSafeToStore(invalid);
    }

    [Fact]
    public void MangledMessages_NeverThrow()
    {
        // Random edits of a message that uses every field, with a fixed seed so a failure repeats.
        var original = Send(
            ("id", "order-42"), ("to", Strings(["b@example.com"])), ("cc", Strings(["c@example.com"])),
            ("from", "news@example.com"), ("reply_to", "r@example.com"), ("body_html", "<p>x</p>"),
            ("headers", new JsonObject { ["X-A"] = "v" }), ("attachments", new JsonArray(Attachment())),
            ("tags", Strings(["t"])));
        const string alphabet = "{}[]\",:\\ \r\n\t\0\ud800\udc00\u2028a@.-_0123456789eE+truefalsnul<>;()";
        var random = new Random(20250314);

        for (var i = 0; i < 3000; i++)
        {
            var text = new StringBuilder(original);
            for (var edits = random.Next(1, 6); edits > 0 && text.Length > 0; edits--)
            {
                var at = random.Next(text.Length);
                switch (random.Next(3))
                {
                    case 0:
                        text.Remove(at, Math.Min(random.Next(1, 8), text.Length - at));
                        break;
                    case 1:
                        text.Insert(at, alphabet[random.Next(alphabet.Length)]);
                        break;
                    default:
                        text[at] = alphabet[random.Next(alphabet.Length)];
                        break;
                }
            }

            var parsed = MessageParser.Parse(text.ToString(), Rules);

            Assert.NotNull(parsed);
            if (parsed is InvalidMessage invalid)
            {
                Assert.StartsWith("invalid: ", invalid.Reason, StringComparison.Ordinal);
                AssertSafeToStore(invalid);
            }
        }
    }

    // A reason is stored with the dead letter, logged and returned over HTTP: one short line.
    static void AssertSafeToStore(InvalidMessage invalid)
    {
        Assert.True(invalid.Reason.Length <= 300, $"reason is {invalid.Reason.Length} characters");
        Assert.DoesNotContain('\r', invalid.Reason);
        Assert.DoesNotContain('\n', invalid.Reason);
        Assert.DoesNotContain(invalid.Reason, char.IsSurrogate);
        Assert.DoesNotContain('\r', invalid.Field ?? "");
        Assert.DoesNotContain('\n', invalid.Field ?? "");
    }
}
