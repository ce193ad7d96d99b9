"""The official Python SDK (pinned in .ci/run) against a running Airlock: chat, streaming, tool loops that
append the SDK's own returned messages, parse() with pydantic, logprobs, n and seeds, embeddings, errors.
Run by test/compat/python-sdk.test.ts with OPENAI_BASE_URL, OPENAI_API_KEY and AIRLOCK_MODEL set."""
import json
import math
import os

import openai
from pydantic import BaseModel, Field

MODEL = os.environ["AIRLOCK_MODEL"]
client = openai.OpenAI()
user = {"role": "user", "content": "Tell me a story"}
tools = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 12}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]
forced = {"type": "function", "function": {"name": "get_weather"}}

# No max_tokens: runs to a stop or the end of the context.
unbounded = client.chat.completions.create(model=MODEL, messages=[user])
assert unbounded.choices[0].finish_reason in ("stop", "length"), unbounded
assert unbounded.system_fingerprint.startswith("fp_"), unbounded.system_fingerprint

# Tool loop: the returned message (a pydantic model with refusal, annotations, audio, function_call …)
# goes back into the history as is, and also as model_dump().
messages = [user]
first = client.chat.completions.create(model=MODEL, messages=messages, tools=tools, tool_choice=forced, max_tokens=64)
call = first.choices[0].message.tool_calls[0]
assert isinstance(json.loads(call.function.arguments)["city"], str)
messages += [first.choices[0].message, {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
second = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8)
assert second.choices[0].message.content
messages.append(second.choices[0].message.model_dump())

# parse() with pydantic: the message carries `parsed`; sent back on the next turn.
class Story(BaseModel):
    title: str = Field(max_length=20)
    happy: bool

parsed = client.chat.completions.parse(model=MODEL, messages=messages, response_format=Story, max_tokens=64)
assert isinstance(parsed.choices[0].message.parsed, Story)
messages.append(parsed.choices[0].message)

# stream() + get_final_completion(): tool calls carry `index` and `parsed_arguments`.
with client.chat.completions.stream(
    model=MODEL, messages=messages + [user], tools=[openai.pydantic_function_tool(Story, name="tell")],
    tool_choice={"type": "function", "function": {"name": "tell"}}, max_tokens=64,
) as stream:
    for _ in stream:
        pass
final = stream.get_final_completion()
streamed_call = final.choices[0].message.tool_calls[0]
assert isinstance(streamed_call.function.parsed_arguments, Story)
messages += [final.choices[0].message, {"role": "tool", "tool_call_id": streamed_call.id, "content": "ok"}]
third = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=4)
assert third.choices[0].finish_reason == "length"

# Streaming with usage: null usage until the last chunk, logprobs null on choices.
chunks = list(client.chat.completions.create(
    model=MODEL, messages=[user], max_tokens=6, stream=True, stream_options={"include_usage": True}))
assert chunks[-1].usage.completion_tokens == 6
assert all(c.usage is None for c in chunks[:-1])
assert all(choice.logprobs is None for c in chunks for choice in c.choices)

# Logprobs spell the answer.
scored = client.chat.completions.create(
    model=MODEL, messages=[user], max_tokens=8, temperature=0, logprobs=True, top_logprobs=2)
tokens = scored.choices[0].logprobs.content
assert "".join(t.token for t in tokens) == scored.choices[0].message.content
assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in tokens)

# n and seeds: distinct choices, reproducible with a seed.
four = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=16, temperature=1, n=4)
assert len({c.text for c in four.choices}) >= 3, [c.text for c in four.choices]
a = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=16, temperature=1, n=2, seed=9)
b = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=16, temperature=1, n=2, seed=9)
assert [c.text for c in a.choices] == [c.text for c in b.choices]

# Embeddings: unit length, dimensions, token arrays.
vectors = client.embeddings.create(model=MODEL, input=["hello", "world"])
assert all(abs(math.sqrt(sum(x * x for x in d.embedding)) - 1) < 1e-4 for d in vectors.data)
assert len(client.embeddings.create(model=MODEL, input="hello", dimensions=8).data[0].embedding) == 8
assert len(client.embeddings.create(model=MODEL, input=[[15, 16], [17]]).data) == 2

# Errors: the SDK's classes, with the parameter named.
try:
    client.chat.completions.create(model=MODEL, messages=[user], temperature=5)
    raise AssertionError("expected a 400")
except openai.BadRequestError as error:
    assert error.body["param"] == "temperature", error.body
try:
    client.chat.completions.create(model="no-such-model", messages=[user], max_tokens=2)
    raise AssertionError("expected a 404")
except openai.NotFoundError:
    pass
print("python sdk", openai.__version__, "ok")
