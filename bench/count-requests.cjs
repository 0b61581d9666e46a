// Preloaded into an emulator by bench/run (node --require bench/count-requests.cjs …): counts the HTTP requests the
// process serves, by operation, and writes the counts to $ION_BENCH_REQUESTS as "Operation count" lines every 200 ms
// while they change. bench/run reads the file before and after a measurement, so it can say how many calls of each
// kind a message cost. The operation is the X-Amz-Target header's last part (DynamoDB and SQS's JSON protocol:
// "PutItem", "ReceiveMessage"…); a request without one is the SNS Query API (form fields, not read here: reading the
// body would take it from the emulator), counted as "SNS". Costs one Map update per request.
"use strict";
const http = require("node:http");
const fs = require("node:fs");

const file = process.env.ION_BENCH_REQUESTS;
if (file) {
  const counts = new Map();
  let changed = true;
  const emit = http.Server.prototype.emit;
  http.Server.prototype.emit = function (event, request, ...rest) {
    if (event === "request") {
      const target = request.headers["x-amz-target"];
      const operation = typeof target === "string" ? target.slice(target.lastIndexOf(".") + 1) : "SNS";
      counts.set(operation, (counts.get(operation) ?? 0) + 1);
      changed = true;
    }
    return emit.call(this, event, request, ...rest);
  };
  const write = () => {
    if (!changed) return;
    changed = false;
    const lines = [...counts].map(([operation, n]) => `${operation} ${n}\n`).join("");
    // Written whole, then renamed: a reader never sees half a file.
    fs.writeFileSync(`${file}.tmp`, lines);
    fs.renameSync(`${file}.tmp`, file);
  };
  setInterval(write, 200).unref();
  process.on("exit", write);
}
