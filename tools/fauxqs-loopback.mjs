// fauxqs (an SNS/SQS emulator) for ion's tests and benchmarks, listening on 127.0.0.1 only: its own command line
// listens on every interface. FAUXQS_PORT picks the port (0: any free one, printed on the first line).
import { buildApp } from "fauxqs";

const app = buildApp({ logger: false, defaultRegion: process.env.FAUXQS_REGION ?? "us-east-1" });
const address = await app.listen({ port: Number(process.env.FAUXQS_PORT ?? 0), host: "127.0.0.1" });
console.log(`fauxqs listening on ${address}`);
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, async () => { await app.close(); process.exit(0); });
