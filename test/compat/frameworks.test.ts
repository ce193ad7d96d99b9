// LangChain (@langchain/openai) and the Vercel AI SDK (@ai-sdk/openai-compatible, @ai-sdk/openai for chat)
// against a running Airlock, each with its defaults: what an application developer gets out of the box.
import { jest } from '@jest/globals';
import { AIMessage, HumanMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { tool as langchainTool } from '@langchain/core/tools';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { embed, embedMany, generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';
import type { Platform } from '../e2e/platform.js';
import { CHAT_MODEL, describeWithModels, norm, startCompatPlatform } from './compat-platform.js';

jest.setTimeout(120_000);

const weather = {
  description: 'Weather in a city',
  schema: z.object({ city: z.string().max(12) }),
};

describeWithModels('LangChain and the Vercel AI SDK against Airlock (stories260K-chat)', () => {
  let platform: Platform;
  let apiKey: string;
  let baseURL: string;

  beforeAll(async () => {
    ({ platform, apiKey, baseURL } = await startCompatPlatform());
  });
  afterAll(() => platform?.close());

  describe('LangChain', () => {
    const chat = (options: Record<string, unknown> = {}) =>
      new ChatOpenAI({ model: CHAT_MODEL, apiKey, configuration: { baseURL }, maxRetries: 0, ...options });

    it('chats and streams with ChatOpenAI defaults (no max_tokens)', async () => {
      const answer = await chat({ temperature: 0, maxTokens: 8 }).invoke('Tell me a story');
      expect(answer.text.length).toBeGreaterThan(0);
      let streamed = '';
      for await (const chunk of await chat({ temperature: 0, maxTokens: 8 }).stream('Tell me a story')) {
        streamed += chunk.text;
      }
      expect(streamed).toBe(answer.text);
      const unbounded = await chat().invoke('Hi');
      expect(['stop', 'length']).toContain(unbounded.response_metadata.finish_reason);
    });

    it('runs a tool loop with its own messages (ToolMessage carries name)', async () => {
      const getWeather = langchainTool(() => 'sunny', { name: 'get_weather', ...weather });
      const model = chat({ maxTokens: 64 }).bindTools([getWeather], { tool_choice: 'get_weather' });
      const history: BaseMessage[] = [new HumanMessage('Weather?')];
      const call = (await model.invoke(history)) as AIMessage;
      expect(call.tool_calls).toHaveLength(1);
      expect(typeof call.tool_calls![0].args.city).toBe('string');
      history.push(
        call,
        new ToolMessage({ tool_call_id: call.tool_calls![0].id!, name: 'get_weather', content: 'sunny' }),
      );
      const answer = await chat({ maxTokens: 8 }).invoke(history);
      expect(answer.text.length).toBeGreaterThan(0);
    });

    it('returns structured output parsed by zod, and unit-length embeddings', async () => {
      const Story = z.object({ title: z.string().max(20), happy: z.boolean() });
      const story = await chat({ maxTokens: 64 })
        .withStructuredOutput(Story, { method: 'jsonSchema' })
        .invoke('A story');
      expect(Story.parse(story)).toEqual(story);
      const embeddings = new OpenAIEmbeddings({ model: CHAT_MODEL, apiKey, configuration: { baseURL } });
      const vector = await embeddings.embedQuery('hello');
      expect(vector).toHaveLength(64);
      expect(norm(vector)).toBeCloseTo(1, 4);
      const short = new OpenAIEmbeddings({
        model: CHAT_MODEL,
        apiKey,
        configuration: { baseURL },
        dimensions: 8,
      });
      expect(await short.embedDocuments(['a', 'b'])).toEqual([expect.any(Array), expect.any(Array)]);
      expect((await short.embedQuery('a')).length).toBe(8);
    });
  });

  describe('Vercel AI SDK', () => {
    const compatible = () =>
      createOpenAICompatible({
        name: 'airlock',
        baseURL,
        apiKey,
        includeUsage: true,
        supportsStructuredOutputs: true,
      });

    it('generates and streams text, with usage', async () => {
      const model = compatible()(CHAT_MODEL);
      const answer = await generateText({
        model,
        prompt: 'Tell me a story',
        maxOutputTokens: 8,
        temperature: 0,
      });
      expect(answer.text.length).toBeGreaterThan(0);
      expect(answer.usage.outputTokens).toBe(8);
      const stream = streamText({ model, prompt: 'Tell me a story', maxOutputTokens: 8, temperature: 0 });
      let streamed = '';
      for await (const part of stream.textStream) streamed += part;
      expect(streamed).toBe(answer.text);
      expect((await stream.usage).outputTokens).toBe(8);
    });

    it('runs a two-step tool loop and generates a zod object', async () => {
      const model = compatible()(CHAT_MODEL);
      let executed = 0;
      const result = await generateText({
        model,
        prompt: 'Weather?',
        maxOutputTokens: 48,
        tools: {
          get_weather: tool({
            description: weather.description,
            inputSchema: weather.schema,
            execute: () => {
              executed++;
              return Promise.resolve('sunny');
            },
          }),
        },
        toolChoice: { type: 'tool', toolName: 'get_weather' },
        // Step two sends the SDK's own assistant and tool messages back, then answers in text.
        prepareStep: ({ stepNumber }) => (stepNumber > 0 ? { toolChoice: 'none' } : undefined),
        stopWhen: stepCountIs(2),
      });
      expect(executed).toBe(1);
      expect(result.steps).toHaveLength(2);
      expect(result.steps[1].text.length).toBeGreaterThan(0);

      const Story = z.object({ title: z.string().max(20), happy: z.boolean() });
      const { object } = await generateObject({
        model,
        schema: Story,
        prompt: 'A story',
        maxOutputTokens: 64,
      });
      expect(Story.parse(object)).toEqual(object);
    });

    it('embeds with unit length and dimensions', async () => {
      const model = compatible().embeddingModel(CHAT_MODEL);
      const { embedding } = await embed({ model, value: 'hello' });
      expect(norm(embedding)).toBeCloseTo(1, 4);
      const { embeddings } = await embedMany({ model, values: ['a', 'b', 'c'] });
      expect(embeddings).toHaveLength(3);
    });

    it('@ai-sdk/openai chat: parallelToolCalls false gives at most one call', async () => {
      const openai = createOpenAI({ baseURL, apiKey });
      const result = await generateText({
        model: openai.chat(CHAT_MODEL),
        prompt: 'Weather?',
        maxOutputTokens: 48,
        tools: { get_weather: tool({ description: weather.description, inputSchema: weather.schema }) },
        toolChoice: 'required',
        providerOptions: { openai: { parallelToolCalls: false } },
      });
      expect(result.toolCalls).toHaveLength(1);
      expect(result.finishReason).toBe('tool-calls');
    });
  });
});
