// fauxqs (an SNS/SQS emulator) for ion's tests, benchmarks and local runs, listening on 127.0.0.1 only: its own
// command line listens on every interface. FAUXQS_PORT picks the port (0: any free one, printed on the first line).
import { buildApp } from "fauxqs";

// fauxqs 2.4.1 refuses a body with a character past U+FFFF (an emoji: its check reads UTF-16 code units), which SQS
// accepts (#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF). Fixed upstream
// (kibertoad/fauxqs#278), not yet in a release the registry serves: until then, give the check SQS's ranges. The
// module is not in the package's exports, so it is imported by its file.
const { INVALID_MESSAGE_BODY_CHAR: refused } =
  await import(new URL("./node_modules/fauxqs/dist/sqs/sqsTypes.js", import.meta.url).href);
const sqsRefuses = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
refused.test = (body) => sqsRefuses.test(body);

const app = buildApp({ logger: false, defaultRegion: process.env.FAUXQS_REGION ?? "us-east-1" });
const address = await app.listen({ port: Number(process.env.FAUXQS_PORT ?? 0), host: "127.0.0.1" });
console.log(`fauxqs listening on ${address}`);
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, async () => { await app.close(); process.exit(0); });
