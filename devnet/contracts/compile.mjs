// Compile a solc standard-JSON input read from stdin with solcjs, offline, and print the
// standard-JSON output on stdout. Usage: node compile.mjs <folder holding node_modules/solc>
import { createRequire } from "node:module";
import path from "node:path";

const nodeFolder = process.argv[2];
if (!nodeFolder) {
  process.stderr.write("usage: node compile.mjs <folder holding node_modules/solc>\n");
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(nodeFolder), "package.json"));
const solc = require("solc");

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;

const output = JSON.parse(solc.compile(input));
process.stdout.write(JSON.stringify({ version: solc.version(), output }));
