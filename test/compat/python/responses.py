"""The official Python SDK's Responses API against a running Airlock: create, stream, parse() with
pydantic, a stateless tool loop over the SDK's own output items, the store policy, and with a key of a
tenant that keeps content (AIRLOCK_STORE_API_KEY) previous_response_id, retrieve, input items and delete.
Run by test/compat/python-sdk.test.ts with OPENAI_BASE_URL, OPENAI_API_KEY and AIRLOCK_MODEL set."""
import json
import os

import openai
from pydantic import BaseModel

MODEL = os.environ["AIRLOCK_MODEL"]
client = openai.OpenAI(max_retries=0)
keeper = openai.OpenAI(api_key=os.environ["AIRLOCK_STORE_API_KEY"], max_retries=0)

# A plain create: the default tenant keeps digests only, so nothing is stored.
first = client.responses.create(model=MODEL, input="Once upon a time", max_output_tokens=10, temperature=0)
assert first.output_text, first
assert first.status == "incomplete" and first.usage.output_tokens == 10, first
assert first.store is False, first

# store=True where the tenant keeps no content: a 400 naming the policy.
try:
    client.responses.create(model=MODEL, input="hi", store=True)
    raise AssertionError("store=True was accepted")
except openai.BadRequestError as error:
    assert error.code == "store_not_allowed", error
    assert "content_capture" in str(error), error

# Streaming: the deltas add up to the final response. The helper's final response needs
# response.completed, and this tiny model only stops on its own inside a grammar: a small JSON schema.
flag = {
    "type": "json_schema",
    "name": "flag",
    "schema": {"type": "object", "properties": {"happy": {"type": "boolean"}}, "required": ["happy"], "additionalProperties": False},
    "strict": True,
}
with client.responses.stream(model=MODEL, input="Are you happy?", text={"format": flag}, max_output_tokens=40) as stream:
    deltas = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
    final = stream.get_final_response()
assert final.status == "completed" and deltas == final.output_text, (deltas, final.output_text)
assert isinstance(json.loads(final.output_text)["happy"], bool), final.output_text
# With a token limit the stream ends with response.incomplete instead.
events = list(client.responses.create(model=MODEL, input="Once upon a time", max_output_tokens=10, temperature=0, stream=True))
assert [events[0].type, events[-1].type] == ["response.created", "response.incomplete"], events[-1]
assert [e.sequence_number for e in events] == list(range(len(events)))

# parse() with pydantic: the schema constrains the output.
class Person(BaseModel):
    name: str
    age: int

parsed = client.responses.parse(
    model=MODEL, input="Describe a person.", text_format=Person, max_output_tokens=60, temperature=0
)
assert isinstance(parsed.output_parsed, Person), parsed

# A stateless tool loop: the SDK's own output items go back into the input as they are.
tools = [
    {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    }
]
items = [{"role": "user", "content": "Weather in Paris?"}]
called = client.responses.create(
    model=MODEL,
    input=items,
    tools=tools,
    tool_choice={"type": "function", "name": "get_weather"},
    max_output_tokens=40,
    temperature=0,
)
call = next(item for item in called.output if item.type == "function_call")
assert isinstance(json.loads(call.arguments)["city"], str), call
items += called.output
items.append({"type": "function_call_output", "call_id": call.call_id, "output": '{"c": 21}'})
answered = client.responses.create(model=MODEL, input=items, tools=tools, max_output_tokens=8, temperature=0)
assert any(item.type == "message" for item in answered.output), answered

# A tenant that keeps content: stored, continued, listed, retrieved, deleted.
stored = keeper.responses.create(model=MODEL, input="Once upon a time", max_output_tokens=8, temperature=0)
assert stored.store is True, stored
follow = keeper.responses.create(
    model=MODEL, previous_response_id=stored.id, input="And then?", max_output_tokens=8, temperature=0
)
assert follow.usage.input_tokens > stored.usage.input_tokens, follow.usage
listed = [item for item in keeper.responses.input_items.list(follow.id, order="asc")]
assert [item.type for item in listed] == ["message", "message", "message"], listed
assert listed[1].id == stored.output[0].id, listed
assert keeper.responses.retrieve(stored.id).output_text == stored.output_text
keeper.responses.delete(stored.id)
try:
    keeper.responses.retrieve(stored.id)
    raise AssertionError("a deleted response was found")
except openai.NotFoundError:
    pass
# Another tenant's key does not see it either.
try:
    client.responses.retrieve(follow.id)
    raise AssertionError("another tenant read a stored response")
except openai.NotFoundError:
    pass

print("ok")
