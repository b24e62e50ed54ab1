// Invoke the handler once, as Lambda would, with the event given as JSON on the command line:
//   node run-local.mjs '{"destination": "Lisbon", "days": 2}'
import { handler } from "./handler.mjs";

const event = JSON.parse(process.argv[2] ?? '{"destination": "Lisbon"}');
const result = await handler(event);
console.log(JSON.stringify(result));
