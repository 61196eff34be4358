// One feature of the official OpenAI Node SDK against the gateway; prints
// what the SDK handed back as JSON, for tests/clients/test_compatibility.py
// to judge. Usage: node check.mjs <feature>, with VEP_BASE_URL (…/v1),
// VEP_KEY and, for "errors", VEP_EMPTY_KEY (a key with no credits).
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.VEP_BASE_URL, apiKey: process.env.VEP_KEY, maxRetries: 0, timeout: 20000 });
const ask = [{ role: "user", content: "What's the weather in Paris?" }];
const weather = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const city = {
  type: "json_schema",
  json_schema: {
    name: "city",
    strict: true,
    schema: {
      type: "object",
      properties: { city: { type: "string" }, population: { type: "integer" } },
      required: ["city", "population"],
      additionalProperties: false,
    },
  },
};

async function failure(call) {
  try {
    await call();
    return { raised: null };
  } catch (error) {
    return { raised: error.constructor.name, status: error.status ?? null, code: error.code ?? null };
  }
}

const features = {
  async create() {
    const completion = await client.chat.completions.create({ model: "best:1", messages: ask });
    return { object: completion.object, content: completion.choices[0].message.content, finish: completion.choices[0].finish_reason };
  },
  async stream() {
    const stream = await client.chat.completions.create({ model: "best:1", messages: ask, stream: true });
    const pieces = [];
    let finish = null;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        if (choice.delta.content) pieces.push(choice.delta.content);
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    return { content: pieces.join(""), chunks: pieces.length, finish };
  },
  async tools() {
    const completion = await client.chat.completions.create({ model: "best:1", messages: ask, tools: [weather] });
    const call = completion.choices[0].message.tool_calls[0];
    return { finish: completion.choices[0].finish_reason, name: call.function.name, arguments: JSON.parse(call.function.arguments) };
  },
  async structured() {
    const completion = await client.chat.completions.parse({ model: "best:1", messages: ask, response_format: city });
    const message = completion.choices[0].message;
    return { parsed: message.parsed ?? JSON.parse(message.content) };
  },
  async usage() {
    const completion = await client.chat.completions.create({ model: "best:1", messages: ask });
    const stream = await client.chat.completions.create({
      model: "best:1", messages: ask, stream: true, stream_options: { include_usage: true },
    });
    let streamed = null;
    for await (const chunk of stream) if (chunk.usage) streamed = chunk.usage;
    return { usage: completion.usage, streamed };
  },
  async errors() {
    const stranger = new OpenAI({ baseURL: process.env.VEP_BASE_URL, apiKey: "vep_not-a-key", maxRetries: 0 });
    const empty = new OpenAI({ baseURL: process.env.VEP_BASE_URL, apiKey: process.env.VEP_EMPTY_KEY, maxRetries: 0 });
    return {
      bad_key: await failure(() => stranger.chat.completions.create({ model: "best:1", messages: ask })),
      no_credits: await failure(() => empty.chat.completions.create({ model: "best:1", messages: ask })),
      unknown_model: await failure(() => client.chat.completions.create({ model: "gpt-17", messages: ask })),
    };
  },
};

const feature = process.argv[2];
try {
  console.log(JSON.stringify(await features[feature]()));
} catch (error) {
  console.log(JSON.stringify({ error: `${error.constructor.name}: ${error.message}` }));
  process.exitCode = 1;
}
