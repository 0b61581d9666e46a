using MimeKit;
using MimeKit.IO;

namespace Ion.Delivery;

/// <summary>
/// A message's body that waits for a task after its content is written, so that a message's SMTP transaction can go
/// (MAIL, RCPT, DATA and the content) while the previous message's outcome is still being recorded, and the relay
/// still cannot have the whole message, i.e. the terminating dot MailKit writes after the content, before that record
/// is committed. A failed task fails the send before the end of the data. Measuring the message (for SIZE) does not
/// wait. Only for DATA: with BDAT the relay knows the end from the size, so <see cref="SmtpSender"/> never uses BDAT.
/// </summary>
/// <remarks>
/// MailKit has no hook before the terminating dot, so this sits where MimeKit writes the content: a MimeMessage writes
/// its body's headers itself, then asks the body for its content alone. This entity therefore carries a copy of the
/// real body's headers (taken again after <see cref="Prepare"/>, which may change a transfer encoding) and, asked for
/// its content, writes the real body's, then waits. MailKit's visitors (which choose 8BITMIME) see the real body.
/// </remarks>
public sealed class WaitingBody : MimeEntity
{
    private readonly MimeEntity _body;
    private readonly Task _wait;

    public WaitingBody(MimeEntity body, Task wait) : base((body ?? throw new ArgumentNullException(nameof(body))).ContentType)
    {
        ArgumentNullException.ThrowIfNull(wait);
        _body = body;
        _wait = wait;
        CopyHeaders();
    }

    /// <summary>The body this one writes.</summary>
    public MimeEntity Body => _body;

    /// <summary>What the content waits for.</summary>
    public Task Waited => _wait;

    public override void Accept(MimeVisitor visitor) => _body.Accept(visitor);

    public override void Prepare(EncodingConstraint constraint, int maxLineLength = 78)
    {
        _body.Prepare(constraint, maxLineLength);
        CopyHeaders();
    }

    public override void WriteTo(FormatOptions options, Stream stream, bool contentOnly, CancellationToken cancellationToken = default)
    {
        var tail = new TailStream(stream);
        _body.WriteTo(options, tail, contentOnly, cancellationToken);
        if (!tail.EndsWithNewLine)
            stream.Write(NewLine(options));
        // ion sends asynchronously; a synchronous write (MailKit's Send) blocks its thread while it waits.
        if (stream is not MeasuringStream)
            _wait.GetAwaiter().GetResult();
    }

    public override async Task WriteToAsync(FormatOptions options, Stream stream, bool contentOnly, CancellationToken cancellationToken = default)
    {
        var tail = new TailStream(stream);
        await _body.WriteToAsync(options, tail, contentOnly, cancellationToken);
        if (!tail.EndsWithNewLine)
            await stream.WriteAsync(NewLine(options), cancellationToken);
        if (stream is not MeasuringStream)
            await _wait;
    }

    private static byte[] NewLine(FormatOptions options) => options.NewLineFormat == NewLineFormat.Dos ? [(byte)'\r', (byte)'\n'] : [(byte)'\n'];

    // A MimeMessage written strictly (MimeKit's default, and ion's) has its body end with a new line, by a flag internal
    // to MimeKit and so set on this entity, not on the body: this entity adds the new line itself, as MimeKit would.
    private void CopyHeaders()
    {
        Headers.Clear();
        foreach (var header in _body.Headers)
            Headers.Add(header.Clone());
    }

    /// <summary>Passes writes on and remembers whether the last byte was a line feed.</summary>
    private sealed class TailStream(Stream inner) : Stream
    {
        public bool EndsWithNewLine { get; private set; }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Remember(buffer);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken);
            Remember(buffer.Span);
        }

        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        private void Remember(ReadOnlySpan<byte> written)
        {
            if (written.Length > 0)
                EndsWithNewLine = written[^1] == (byte)'\n';
        }
    }
}
