// An AWS Lambda style handler: a travel itinerary for a destination and a traveller profile,
// asked through the sidecache sidecar instead of straight at OpenAI. The only sidecache-specific
// line is the baseURL; repeated and paraphrased requests come back from the cache in milliseconds.
//
// Event: {"destination": "Lisbon", "days": 3, "traveller": "a family with two young kids",
//         "stream": false}
// Environment: SIDECACHE_URL (default http://127.0.0.1:8080/v1), SIDECACHE_KEY (a virtual key
// made with `sidecache keys create`), SIDECACHE_MODEL (a model alias, default "fast").
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.SIDECACHE_URL ?? "http://127.0.0.1:8080/v1",
  apiKey: process.env.SIDECACHE_KEY ?? "sk-sc-anonymous",
  maxRetries: 1,
  timeout: 60_000,
});
const model = process.env.SIDECACHE_MODEL ?? "fast";

function json(statusCode, body) {
  return { statusCode, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

function prompt({ destination, days, traveller }) {
  return `Plan a ${days}-day itinerary for ${destination} for ${traveller}. ` +
    "One short paragraph per day: morning, afternoon, evening.";
}

export async function handler(event) {
  const input = typeof event?.body === "string" ? JSON.parse(event.body) : event ?? {};
  if (!input.destination) {
    return json(400, { error: "destination is required" });
  }
  const request = {
    model,
    messages: [
      { role: "system", content: "You are a concise travel planner." },
      { role: "user", content: prompt({ days: 3, traveller: "a solo traveller", ...input }) },
    ],
  };
  try {
    if (input.stream) {
      // Streamed from upstream on a miss, replayed chunk by chunk on a hit: the same code.
      const { data: stream, response } = await client.chat.completions
        .create({ ...request, stream: true })
        .withResponse();
      let itinerary = "";
      for await (const chunk of stream) {
        itinerary += chunk.choices[0]?.delta?.content ?? "";
      }
      return json(200, { itinerary, cache: response.headers.get("x-sidecache") });
    }
    const { data, response } = await client.chat.completions.create(request).withResponse();
    return json(200, {
      itinerary: data.choices[0].message.content,
      cache: response.headers.get("x-sidecache"),
    });
  } catch (err) {
    if (err instanceof OpenAI.APIConnectionError) {
      // The sidecar is down or not started yet: say so plainly instead of a stack trace.
      return json(503, { error: "the sidecache sidecar is unreachable; retry shortly" });
    }
    if (err instanceof OpenAI.APIError) {
      return json(err.status ?? 502, { error: err.message });
    }
    throw err;
  }
}
