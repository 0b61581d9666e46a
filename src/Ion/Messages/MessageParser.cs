using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MimeKit;

namespace Ion.Messages;

/// <summary>Reads the JSON of a queued message (contract version 1) into a <see cref="ParsedMessage"/>.</summary>
// Pure and total: any input, however hostile, gives a value and never an exception, because an
// unreadable message must still reach the dead letters with its reason. The first problem found
// is reported; fields are checked in the order the contract lists them.
public static class MessageParser
{
    // A valid message nests three deep (message, attachments, attachment); 16 refuses a hostile
    // document early and never a real one.
    const int MaxDepth = 16;
    // Reasons are stored with dead letters and returned over HTTP: hostile input is quoted only this far.
    const int MaxEcho = 100;
    public const int MaxIdLength = 128;
    const int MaxTagLength = 64;
    const int MaxFileNameLength = 255;
    // RFC 5322 section 2.1.1: a header line should fit in 78 characters, and "Name: " with it.
    const int MaxHeaderNameLength = 76;
    // RFC 5322 section 2.1.1: no line may be longer than 998 characters.
    const int MaxHeaderValueLength = 998;
    // Kept free so ion can add headers of its own without clashing with a client's.
    const string ReservedHeaderPrefix = "X-Ion-";

    static readonly string[] _sendFields =
    [
        "action", "id", "recipient", "to", "cc", "bcc", "from", "reply_to", "subject",
        "body_text", "body_html", "headers", "attachments", "tags", "ignore_suppression", "send_at",
    ];

    // ISO 8601 as clients write it (seconds and their fraction optional), with the offset (K) checked for separately, because
    // K also reads a time without one, which would mean the server's local time.
    static readonly string[] _sendAtFormats =
    [
        "yyyy-MM-dd'T'HH:mmK", "yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK",
    ];

    static readonly string[] _attachmentFields = ["filename", "content_type", "content_base64"];

    static readonly SearchValues<char> _idChars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@+=/-");

    static readonly SearchValues<char> _charsetChars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'+-^_`{}~.:");

    static readonly ParserOptions _strict = new()
    {
        ParameterComplianceMode = RfcComplianceMode.Strict,
    };

    /// <summary>Parses and validates one message; invalid input gives an <see cref="InvalidMessage"/>, never an exception.</summary>
    public static ParsedMessage Parse(string json, MessageRules rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        if (string.IsNullOrWhiteSpace(json))
            return Invalid(null, "not JSON: the message is empty");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = MaxDepth });
        }
        catch (JsonException e)
        {
            return Invalid(null, "not JSON: " + Escape(e.Message, 2 * MaxEcho));
        }
        catch (ArgumentException)
        {
            // JsonDocument transcodes the text to UTF-8 first, and refuses a lone surrogate.
            return Invalid(null, "not JSON: the text is not valid UTF-16");
        }

        using (document)
            return ParseDocument(document.RootElement, rules);
    }

    /// <summary>Whether <paramref name="text"/> is one plain mailbox, <c>local@domain</c>, as the contract allows.</summary>
    // No display name, comment, group, route, quoted local part or domain literal: the address goes
    // into headers and RCPT TO, so there must be nothing in it but the address. The rule itself is
    // Addresses.TryCanonicalize; this stays for callers that only need the yes or no.
    internal static bool IsMailbox(string text) => Addresses.TryCanonicalize(text, out _, out _);

    static ParsedMessage ParseDocument(JsonElement root, MessageRules rules)
    {
        if (root.ValueKind != JsonValueKind.Object)
            return Invalid(null, $"the message must be a JSON object, not {Describe(root.ValueKind)}");
        if (ReadObject(root, null, out var fields) is { } invalid)
            return invalid;
        if (!fields.TryGet("action", out var actionValue))
            return Invalid("action", "is required: 'send' or 'redrive'");
        if (ReadString(actionValue, "action", out var action) is { } notString)
            return notString;

        return action switch
        {
            "send" => ParseSend(fields, rules),
            "redrive" => ParseRedrive(fields),
            _ => Invalid("action", $"must be 'send' or 'redrive', not {Quote(action)}"),
        };
    }

    static ParsedMessage ParseRedrive(JsonFields fields)
    {
        foreach (var name in fields.Names)
        {
            if (name is not ("action" or "ids"))
                return Invalid(FieldName(name), "not allowed with action 'redrive'");
        }
        if (!fields.TryGet("ids", out var value))
            return new RedriveRequest(null);
        if (value.ValueKind != JsonValueKind.Array)
            return Invalid("ids", $"must be an array of message ids, not {Describe(value.ValueKind)}");
        // An empty list would read as "redrive nothing" to some and "redrive everything" to others.
        if (value.GetArrayLength() == 0)
            return Invalid("ids", "must not be empty; leave it out to redrive every dead letter");

        var ids = new List<string>(value.GetArrayLength());
        var index = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (ReadId(item, $"ids[{index++}]", out var id) is { } invalid)
                return invalid;
            ids.Add(id);
        }
        return new RedriveRequest(ids);
    }

    static ParsedMessage ParseSend(JsonFields fields, MessageRules rules)
    {
        if (FindUnknown(fields, _sendFields, null) is { } unknown)
            return unknown;

        string? id = null;
        if (fields.TryGet("id", out var idValue) && ReadId(idValue, "id", out id) is { } badId)
            return badId;

        List<string> to = [], cc = [], bcc = [];
        if (fields.TryGet("recipient", out var recipientValue))
        {
            if (ReadAddress(recipientValue, "recipient", out var recipient) is { } badRecipient)
                return badRecipient;
            to.Add(recipient);
        }
        if (ReadAddressList(fields, "to", to) is { } badTo)
            return badTo;
        if (ReadAddressList(fields, "cc", cc) is { } badCc)
            return badCc;
        if (ReadAddressList(fields, "bcc", bcc) is { } badBcc)
            return badBcc;
        if (to.Count == 0)
            return Invalid("recipient/to", "at least one recipient is required");
        if (to.Count + cc.Count + bcc.Count > MessageRules.MaxRecipients)
            return Invalid("recipient/to/cc/bcc", $"more than {MessageRules.MaxRecipients} recipients in total");

        string? from = null;
        if (fields.TryGet("from", out var fromValue))
        {
            if (ReadString(fromValue, "from", out var given) is { } notString)
                return notString;
            if (ToSenderAddress(given, "from", out var sender) is { } badFrom)
                return badFrom;
            if (!IsAllowedSender(sender, rules))
                return Invalid("from", $"{Quote(given)} is not an allowed sender");
            from = sender;
        }

        string? replyTo = null;
        if (fields.TryGet("reply_to", out var replyToValue))
        {
            if (ReadString(replyToValue, "reply_to", out var given) is { } notString)
                return notString;
            if (ToSenderAddress(given, "reply_to", out var address) is { } badReplyTo)
                return badReplyTo;
            replyTo = address;
        }

        if (!fields.TryGet("subject", out var subjectValue))
            return Invalid("subject", "is required");
        if (ReadSubject(subjectValue, out var subject) is { } badSubject)
            return badSubject;

        if (ReadOptionalString(fields, "body_text", out var bodyText) is { } badText)
            return badText;
        if (ReadOptionalString(fields, "body_html", out var bodyHtml) is { } badHtml)
            return badHtml;
        // An empty body is no body: it would only add an empty part.
        bodyText = string.IsNullOrEmpty(bodyText) ? null : bodyText;
        bodyHtml = string.IsNullOrEmpty(bodyHtml) ? null : bodyHtml;
        if (bodyText is null && bodyHtml is null)
            return Invalid("body_text/body_html", "at least one is required and must not be empty");

        List<KeyValuePair<string, string>> headers = [];
        if (fields.TryGet("headers", out var headersValue) && ReadHeaders(headersValue, headers) is { } badHeaders)
            return badHeaders;

        List<Attachment> attachments = [];
        if (fields.TryGet("attachments", out var attachmentsValue)
            && ReadAttachments(attachmentsValue, rules.MaxAttachmentBytes, attachments) is { } badAttachments)
            return badAttachments;

        List<string> tags = [];
        if (fields.TryGet("tags", out var tagsValue) && ReadTags(tagsValue, tags) is { } badTags)
            return badTags;

        // Whether a message may bypass the suppression list is the publisher's and the delivery's to decide
        // (Ion:Suppression:AllowIgnore); here it is only read.
        var ignoreSuppression = false;
        if (fields.TryGet("ignore_suppression", out var ignoreValue))
        {
            if (ignoreValue.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                return Invalid("ignore_suppression", $"must be true or false, not {Describe(ignoreValue.ValueKind)}");
            ignoreSuppression = ignoreValue.GetBoolean();
        }

        DateTimeOffset? sendAt = null;
        if (fields.TryGet("send_at", out var sendAtValue))
        {
            if (ReadSendAt(sendAtValue, out var at) is { } badSendAt)
                return badSendAt;
            sendAt = at;
        }

        return new SendRequest(new EmailMessage
        {
            Id = id,
            To = to,
            Cc = cc,
            Bcc = bcc,
            From = from,
            ReplyTo = replyTo,
            Subject = subject,
            BodyText = bodyText,
            BodyHtml = bodyHtml,
            Headers = headers,
            Attachments = attachments,
            Tags = tags,
            IgnoreSuppression = ignoreSuppression,
            SendAt = sendAt,
        });
    }

    /// <summary>Why <paramref name="email"/>'s <c>send_at</c> cannot be accepted at <paramref name="now"/> (more than
    /// <see cref="MessageRules.MaxScheduleAhead"/> ahead), or null. Checked when a message is published, not when it is
    /// delivered: the parser has no clock, and a message accepted once stays accepted.</summary>
    public static InvalidMessage? ScheduleProblem(EmailMessage email, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(email);
        return email.SendAt is { } sendAt && sendAt - now > MessageRules.MaxScheduleAhead
            ? Invalid("send_at", string.Create(CultureInfo.InvariantCulture,
                $"{sendAt:yyyy-MM-dd'T'HH:mm:ss'Z'} is more than {MessageRules.MaxScheduleAhead.TotalDays} days ahead"))
            : null;
    }

    /// <summary>The time in UTC; a time in the past is fine (sent at once).</summary>
    static InvalidMessage? ReadSendAt(JsonElement value, out DateTimeOffset sendAt)
    {
        sendAt = default;
        if (ReadString(value, "send_at", out var text) is { } invalid)
            return invalid;
        const string Example = "as 2026-12-24T09:00:00Z or 2026-12-24T10:00:00+01:00";
        if (!DateTimeOffset.TryParseExact(text, _sendAtFormats, CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed))
            return Invalid("send_at", $"{Quote(text)} is not an ISO 8601 time, {Example}");
        // Without an offset the time would be read in whatever zone the server runs in.
        if (!HasOffset(text))
            return Invalid("send_at", $"{Quote(text)} has no offset: end it with Z or ±hh:mm, {Example}");
        sendAt = parsed.ToUniversalTime();
        return null;

        static bool HasOffset(string text) =>
            text.EndsWith('Z') || (text.Length > 6 && text[^6] is '+' or '-' && text[^3] == ':');
    }

    static InvalidMessage? ReadId(JsonElement value, string field, out string id)
    {
        if (ReadString(value, field, out id) is { } invalid)
            return invalid;
        if (id.Length == 0)
            return Invalid(field, "must not be empty");
        if (id.Length > MaxIdLength)
            return Invalid(field, $"is longer than {MaxIdLength} characters");
        var bad = id.AsSpan().IndexOfAnyExcept(_idChars);
        if (bad >= 0)
            return Invalid(field, $"contains {CharName(id[bad])}; an id may hold only letters, digits and . _ : @ + = / -");
        return null;
    }

    /// <summary>The address in <paramref name="value"/>, in canonical form (<see cref="Addresses.TryCanonicalize"/>).</summary>
    static InvalidMessage? ReadAddress(JsonElement value, string field, out string address)
    {
        address = "";
        if (ReadString(value, field, out var text) is { } invalid)
            return invalid;
        return ToAddress(text, field, out address);
    }

    static InvalidMessage? ToAddress(string text, string field, out string address)
    {
        address = "";
        if (text.AsSpan().ContainsAny('\r', '\n'))
            return Invalid(field, "contains a line break");
        if (!Addresses.TryCanonicalize(text, out var canonical, out var problem))
            return Invalid(field, $"{Quote(text)} is not an email address: {problem}");
        address = canonical;
        return null;
    }

    // From and Reply-To are in every copy: their local part must be ASCII (Addresses.SenderProblem).
    static InvalidMessage? ToSenderAddress(string text, string field, out string address)
    {
        if (ToAddress(text, field, out address) is { } invalid)
            return invalid;
        if (Addresses.SenderProblem(address) is { } problem)
            return Invalid(field, $"{Quote(text)}: {problem}");
        return null;
    }

    static InvalidMessage? ReadAddressList(JsonFields fields, string field, List<string> addresses)
    {
        if (!fields.TryGet(field, out var value))
            return null;
        if (value.ValueKind != JsonValueKind.Array)
            return Invalid(field, $"must be an array of email addresses, not {Describe(value.ValueKind)}");
        // Checked before reading, so a list of a million addresses costs nothing.
        if (value.GetArrayLength() > MessageRules.MaxRecipients)
            return Invalid(field, $"more than {MessageRules.MaxRecipients} recipients");

        var index = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (ReadAddress(item, $"{field}[{index++}]", out var address) is { } invalid)
                return invalid;
            addresses.Add(address);
        }
        return null;
    }

    // The default sender, an allowed address, or any address of an allowed @domain. Compared in canonical
    // form on both sides, so @bücher.de in the settings allows x@XN--BCHER-KVA.DE and the other spellings
    // of that domain. Ignoring case in the local part too is a choice kept from before: senders are
    // ion's own addresses, whose case nobody means to distinguish, and they are ASCII.
    static bool IsAllowedSender(string canonicalAddress, MessageRules rules)
    {
        if (Addresses.TryCanonicalize(rules.DefaultSender, out var defaultSender, out _)
            && string.Equals(canonicalAddress, defaultSender, StringComparison.OrdinalIgnoreCase))
            return true;
        var domain = canonicalAddress[(canonicalAddress.LastIndexOf('@') + 1)..];
        foreach (var allowed in rules.AllowedSenders)
        {
            var matches = allowed.StartsWith('@')
                ? Addresses.TryCanonicalizeDomain(allowed[1..], out var allowedDomain, out _)
                    && string.Equals(domain, allowedDomain, StringComparison.Ordinal)
                : Addresses.TryCanonicalize(allowed, out var allowedAddress, out _)
                    && string.Equals(canonicalAddress, allowedAddress, StringComparison.OrdinalIgnoreCase);
            if (matches)
                return true;
        }
        return false;
    }

    static InvalidMessage? ReadSubject(JsonElement value, out string subject)
    {
        if (ReadString(value, "subject", out subject) is { } invalid)
            return invalid;
        if (SingleLineProblem(subject) is { } problem)
            return Invalid("subject", problem);
        if (subject.Length > MessageRules.MaxSubjectLength)
            return Invalid("subject", $"is longer than {MessageRules.MaxSubjectLength} characters");
        return null;
    }

    static InvalidMessage? ReadHeaders(JsonElement value, List<KeyValuePair<string, string>> headers)
    {
        if (value.ValueKind != JsonValueKind.Object)
            return Invalid("headers", $"must be an object of header names and values, not {Describe(value.ValueKind)}");

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var property in value.EnumerateObject())
        {
            if (headers.Count == MessageRules.MaxHeaders)
                return Invalid("headers", $"more than {MessageRules.MaxHeaders} headers");
            if (!TryGetName(property, out var name))
                return Invalid("headers", "a header name is not valid UTF-16 text");
            if (HeaderNameProblem(name) is { } problem)
                return Invalid("headers", problem);
            // Names are case-insensitive in email, so X-Trace and x-trace are the same header.
            if (!seen.Add(name))
                return Invalid("headers", $"{Quote(name)} appears more than once");

            // The name is now known to be short printable ASCII, safe to use in the field.
            var field = "headers." + name;
            if (ReadString(property.Value, field, out var text) is { } invalid)
                return invalid;
            if (SingleLineProblem(text) is { } valueProblem)
                return Invalid(field, valueProblem);
            if (text.Length > MaxHeaderValueLength)
                return Invalid(field, $"is longer than {MaxHeaderValueLength} characters");
            headers.Add(new(name, text));
        }
        return null;
    }

    static string? HeaderNameProblem(string name)
    {
        // RFC 5322 section 3.6.8: printable ASCII except the colon.
        if (name.Length == 0 || name.AsSpan().ContainsAnyExceptInRange('!', '~') || name.Contains(':', StringComparison.Ordinal))
            return $"{Quote(name)} is not a header name";
        if (name.Length <= 2 || !name.StartsWith("X-", StringComparison.OrdinalIgnoreCase))
            return $"{Quote(name)} is not allowed: only custom X- headers are";
        if (name.StartsWith(ReservedHeaderPrefix, StringComparison.OrdinalIgnoreCase))
            return $"{Quote(name)} is not allowed: {ReservedHeaderPrefix} headers are reserved for ion";
        if (name.Length > MaxHeaderNameLength)
            return $"{Quote(name)} is longer than {MaxHeaderNameLength} characters";
        return null;
    }

    static InvalidMessage? ReadAttachments(JsonElement value, long maxBytes, List<Attachment> attachments)
    {
        if (value.ValueKind != JsonValueKind.Array)
            return Invalid("attachments", $"must be an array of attachments, not {Describe(value.ValueKind)}");
        if (value.GetArrayLength() > MessageRules.MaxAttachments)
            return Invalid("attachments", $"more than {MessageRules.MaxAttachments} attachments");

        long totalBytes = 0;
        var index = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (ReadAttachment(item, $"attachments[{index++}]", attachments) is { } invalid)
                return invalid;
            totalBytes += attachments[^1].Content.Length;
            if (totalBytes > maxBytes)
                return Invalid("attachments", $"more than {maxBytes} bytes in total once decoded");
        }
        return null;
    }

    static InvalidMessage? ReadAttachment(JsonElement value, string field, List<Attachment> attachments)
    {
        if (value.ValueKind != JsonValueKind.Object)
            return Invalid(field, $"must be an object with filename, content_type and content_base64, not {Describe(value.ValueKind)}");
        if (ReadObject(value, field, out var fields) is { } invalid)
            return invalid;
        if (FindUnknown(fields, _attachmentFields, field) is { } unknown)
            return unknown;

        var fileNameField = field + ".filename";
        if (ReadRequiredString(fields, "filename", fileNameField, out var fileName) is { } badFileNameType)
            return badFileNameType;
        if (FileNameProblem(fileName) is { } badFileName)
            return Invalid(fileNameField, badFileName);

        var contentTypeField = field + ".content_type";
        if (ReadRequiredString(fields, "content_type", contentTypeField, out var contentType) is { } badContentTypeType)
            return badContentTypeType;
        if (ReadContentType(contentType, out var mediaType) is { } badContentType)
            return Invalid(contentTypeField, badContentType);

        var contentField = field + ".content_base64";
        if (ReadRequiredString(fields, "content_base64", contentField, out var base64) is { } badBase64Type)
            return badBase64Type;
        if (DecodeBase64(base64) is not { } content)
            return Invalid(contentField, "is not valid base64 (standard alphabet, with padding)");

        attachments.Add(new Attachment(fileName, mediaType, content));
        return null;
    }

    static string? FileNameProblem(string fileName)
    {
        if (SingleLineProblem(fileName) is { } problem)
            return problem;
        if (string.IsNullOrWhiteSpace(fileName))
            return "must not be empty";
        if (fileName.AsSpan().ContainsAny('/', '\\') || fileName is "." or "..")
            return $"{Quote(fileName)} is not a plain file name (no / or \\)";
        if (fileName.Length > MaxFileNameLength)
            return $"is longer than {MaxFileNameLength} characters";
        return null;
    }

    // Gives the type back as type/subtype, with the charset when there is one. Other parameters
    // are dropped: the name comes from filename, not from a second place that could disagree.
    static string? ReadContentType(string text, out string mediaType)
    {
        mediaType = "";
        if (SingleLineProblem(text) is { } problem)
            return problem;
        if (!Ascii.IsValid(text)
            || !ContentType.TryParse(_strict, text, out var parsed)
            || string.IsNullOrEmpty(parsed.MediaType)
            || string.IsNullOrEmpty(parsed.MediaSubtype))
            return $"{Quote(text)} is not a MIME type (type/subtype)";
        // An attachment is one base64 leaf part; a multipart or message type there would be read
        // back as structure, and RFC 2046 forbids base64 for both.
        if (parsed.IsMimeType("multipart", "*") || parsed.IsMimeType("message", "*"))
            return $"{Quote(text)} cannot be an attachment's type; use application/octet-stream";

        mediaType = parsed.MimeType.ToLowerInvariant();
        if (string.IsNullOrEmpty(parsed.Charset))
            return null;
        // Charset names (RFC 2978) are tokens; anything else would need quoting to survive.
        if (parsed.Charset.AsSpan().ContainsAnyExcept(_charsetChars))
            return $"{Quote(parsed.Charset)} is not a charset name";
        mediaType += "; charset=" + parsed.Charset;
        return null;
    }

    static byte[]? DecodeBase64(string text)
    {
        // Never smaller than the decoded bytes (whitespace only makes the text longer).
        var buffer = new byte[(text.Length + 3) / 4 * 3];
        if (!Convert.TryFromBase64String(text, buffer, out var written))
            return null;
        return written == buffer.Length ? buffer : buffer[..written];
    }

    static InvalidMessage? ReadTags(JsonElement value, List<string> tags)
    {
        if (value.ValueKind != JsonValueKind.Array)
            return Invalid("tags", $"must be an array of strings, not {Describe(value.ValueKind)}");
        if (value.GetArrayLength() > MessageRules.MaxTags)
            return Invalid("tags", $"more than {MessageRules.MaxTags} tags");

        var index = 0;
        foreach (var item in value.EnumerateArray())
        {
            var field = $"tags[{index++}]";
            if (ReadString(item, field, out var tag) is { } invalid)
                return invalid;
            if (SingleLineProblem(tag) is { } problem)
                return Invalid(field, problem);
            if (string.IsNullOrWhiteSpace(tag))
                return Invalid(field, "must not be empty");
            if (tag.Length > MaxTagLength)
                return Invalid(field, $"is longer than {MaxTagLength} characters");
            tags.Add(tag);
        }
        return null;
    }

    // For text that ends up in a header: CR or LF would end the header and start another one
    // (header injection); other control characters have no business there either.
    static string? SingleLineProblem(string text)
    {
        if (text.AsSpan().ContainsAny('\r', '\n'))
            return "contains a line break";
        foreach (var c in text)
        {
            if (char.IsControl(c) && c != '\t')
                return $"contains the control character {CharName(c)}";
        }
        return null;
    }

    /// <summary>The string property <paramref name="name"/>, reported as <paramref name="field"/> when missing or not a string.</summary>
    static InvalidMessage? ReadRequiredString(JsonFields fields, string name, string field, out string text)
    {
        text = "";
        return fields.TryGet(name, out var value) ? ReadString(value, field, out text) : Invalid(field, "is required");
    }

    static InvalidMessage? ReadOptionalString(JsonFields fields, string field, out string? text)
    {
        text = null;
        if (!fields.TryGet(field, out var value))
            return null;
        var invalid = ReadString(value, field, out var read);
        text = read;
        return invalid;
    }

    static InvalidMessage? ReadString(JsonElement value, string field, out string text)
    {
        text = "";
        if (value.ValueKind != JsonValueKind.String)
            return Invalid(field, $"must be a string, not {Describe(value.ValueKind)}");
        try
        {
            text = value.GetString() ?? "";
        }
        catch (InvalidOperationException)
        {
            // An escaped lone surrogate ("\ud800") is valid JSON but no valid string.
            return Invalid(field, "is not valid UTF-16 text");
        }
        return null;
    }

    static bool TryGetName(JsonProperty property, out string name)
    {
        try
        {
            name = property.Name;
            return true;
        }
        catch (InvalidOperationException)
        {
            name = "";
            return false;
        }
    }

    // Reads an object's fields once: duplicates are refused (JSON readers disagree on which one
    // wins), and a field set to null counts as absent.
    static InvalidMessage? ReadObject(JsonElement value, string? field, out JsonFields fields)
    {
        fields = new JsonFields();
        foreach (var property in value.EnumerateObject())
        {
            if (!TryGetName(property, out var name))
                return Invalid(field, "a field name is not valid UTF-16 text");
            if (!fields.Add(name, property.Value))
            {
                return field is null
                    ? new InvalidMessage(FieldName(name), $"invalid: duplicate field {Quote(name)}")
                    : Invalid(field, $"duplicate field {Quote(name)}");
            }
        }
        return null;
    }

    static InvalidMessage? FindUnknown(JsonFields fields, string[] known, string? parent)
    {
        foreach (var name in fields.Names)
        {
            if (Array.IndexOf(known, name) >= 0)
                continue;
            var hint = Suggest(name, known) is { } suggestion ? $" (did you mean '{suggestion}'?)" : "";
            return parent is null
                ? new InvalidMessage(FieldName(name), $"invalid: unknown field {Quote(name)}{hint}")
                : Invalid(parent, $"unknown field {Quote(name)}{hint}");
        }
        return null;
    }

    // The likely typos: bodytext, bodyText, Body-Text, SUBJECT.
    static string? Suggest(string name, string[] known)
    {
        if (name.Length > 32)
            return null;
        var key = Simplify(name);
        return Array.Find(known, candidate => Simplify(candidate) == key);

        static string Simplify(string text) =>
            text.Replace("_", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal).ToLowerInvariant();
    }

    static InvalidMessage Invalid(string? field, string text) =>
        new(field, field is null ? $"invalid: {text}" : $"invalid: {field}: {text}");

    static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    static string CharName(char c) => c switch
    {
        ' ' => "a space",
        > ' ' and <= '~' => $"'{c}'",
        _ => "U+" + ((int)c).ToString("X4", CultureInfo.InvariantCulture),
    };

    static string FieldName(string name) => Escape(name, MaxEcho);

    static string Quote(string text) => "'" + Escape(text, MaxEcho) + "'";

    // At most max characters of the text, on one line, with anything that could break a log line
    // or hide text (controls, bidi overrides, lone surrogates) written as an escape.
    static string Escape(string text, int max)
    {
        var builder = new StringBuilder(Math.Min(text.Length, max) + 8);
        for (var i = 0; i < text.Length; i++)
        {
            if (i == max)
            {
                builder.Append('…');
                break;
            }
            var c = text[i];
            switch (c)
            {
                case '\r':
                    builder.Append("\\r");
                    break;
                case '\n':
                    builder.Append("\\n");
                    break;
                case '\t':
                    builder.Append("\\t");
                    break;
                default:
                    if (char.GetUnicodeCategory(c) is UnicodeCategory.Control or UnicodeCategory.Format
                        or UnicodeCategory.Surrogate or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator)
                        builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else
                        builder.Append(c);
                    break;
            }
        }
        return builder.ToString();
    }

    // An object's fields in document order; null values are remembered as names only.
    sealed class JsonFields
    {
        readonly HashSet<string> _seen = new(StringComparer.Ordinal);
        readonly Dictionary<string, JsonElement> _values = new(StringComparer.Ordinal);

        public List<string> Names { get; } = [];

        public bool Add(string name, JsonElement value)
        {
            if (!_seen.Add(name))
                return false;
            Names.Add(name);
            if (value.ValueKind != JsonValueKind.Null)
                _values.Add(name, value);
            return true;
        }

        public bool TryGet(string name, out JsonElement value) => _values.TryGetValue(name, out value);
    }
}
