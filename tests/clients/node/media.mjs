// One media route of the official OpenAI Node SDK against the gateway; prints
// what the SDK handed back as JSON, for tests/clients/test_media_clients.py to
// judge. Usage: node media.mjs <feature>, with VEP_BASE_URL (…/v1) and VEP_KEY.
import OpenAI, { toFile } from "openai";

const client = new OpenAI({ baseURL: process.env.VEP_BASE_URL, apiKey: process.env.VEP_KEY, maxRetries: 0, timeout: 20000 });

async function speak(input) {
  const response = await client.audio.speech.create({ model: "speech/auto", voice: "alloy", input, response_format: "wav" });
  const chunks = [];
  for await (const chunk of response.body) chunks.push(Buffer.from(chunk));
  return { type: response.headers.get("content-type"), audio: Buffer.concat(chunks), pieces: chunks.length };
}

const features = {
  async embeddings() {
    const answer = await client.embeddings.create({ model: "embed/auto", input: ["a cat", "a dog"] });
    return { vectors: answer.data.map((d) => d.embedding.length), index: answer.data.map((d) => d.index), usage: answer.usage };
  },
  async images() {
    const answer = await client.images.generate({ model: "images/auto", prompt: "a red fox", response_format: "b64_json" });
    const png = Buffer.from(answer.data[0].b64_json, "base64");
    return { images: answer.data.length, magic: png.subarray(1, 4).toString("latin1") };
  },
  async speech() {
    const { type, audio } = await speak("hello from node");
    return { type, riff: audio.subarray(0, 4).toString("latin1"), bytes: audio.length };
  },
  async transcription() {
    const { audio } = await speak("words spoken in node");
    const file = await toFile(audio, "node.wav", { type: "audio/wav" });
    const heard = await client.audio.transcriptions.create({ model: "transcribe/auto", file });
    return { text: heard.text };
  },
};

const feature = process.argv[2];
process.stdout.write(JSON.stringify(await features[feature]()) + "\n");
