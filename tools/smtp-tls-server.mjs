// An SMTP relay with STARTTLS (or TLS on connect) and AUTH, for ion's tests: writes each accepted message to
// SMTP_OUT as <id>.eml plus <id>.json (envelope, user, whether TLS was on). Listens on 127.0.0.1 only.
import { SMTPServer } from "smtp-server";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const port = Number(process.env.SMTP_PORT ?? 2587);
const user = process.env.SMTP_USER ?? "ion";
const pass = process.env.SMTP_PASS ?? "secret";
const out = process.env.SMTP_OUT ?? "./mail-out";
mkdirSync(out, { recursive: true });
let seq = 0;

const server = new SMTPServer({
  secure: process.env.SMTP_IMPLICIT_TLS === "1",
  key: readFileSync(process.env.SMTP_KEY),
  cert: readFileSync(process.env.SMTP_CERT),
  authMethods: ["PLAIN", "LOGIN"],
  allowInsecureAuth: false,
  disableReverseLookup: true,
  name: "localhost",
  logger: false,
  size: 10 * 1024 * 1024,
  onAuth(auth, session, cb) {
    if (auth.username === user && auth.password === pass) return cb(null, { user });
    return cb(new Error("Invalid username or password"));
  },
  onData(stream, session, cb) {
    const chunks = [];
    stream.on("data", c => chunks.push(c));
    stream.on("end", () => {
      const id = `${Date.now()}-${++seq}`;
      writeFileSync(join(out, `${id}.eml`), Buffer.concat(chunks));
      writeFileSync(join(out, `${id}.json`), JSON.stringify({
        user: session.user, secure: session.secure,
        from: session.envelope.mailFrom.address, to: session.envelope.rcptTo.map(r => r.address) }));
      cb(null, `Queued as ${id}`);
    });
  },
});
server.on("error", e => console.error("smtp-server error:", e.message));
server.listen(port, "127.0.0.1", () => console.log(`smtp-server listening on 127.0.0.1:${port}`));
for (const s of ["SIGTERM", "SIGINT"]) process.on(s, () => server.close(() => process.exit(0)));
