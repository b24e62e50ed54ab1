"""OpenAI's Responses API (``POST /v1/responses``), translated to and from Chat Completions.

The gateway serves a Responses request as the chat request it means, so caching, routing,
limits and accounting are the chat path's: ``to_chat`` builds that request (``instructions``
become the system message, input items become messages, flat function tools become chat tools,
``text.format`` becomes ``response_format``, ``max_output_tokens`` becomes
``max_completion_tokens``), and ``from_completion`` turns the chat.completion back into a
Response object. The event stream is in ``response_events``.

The gateway keeps no responses: what needs OpenAI's server-side storage (``previous_response_id``,
``store: true``, ``conversation``, ``background``, stored ``prompt`` templates, ``item_reference``
inputs) and the tools OpenAI runs itself (web search, file search, code interpreter, ...) are
refused with a 400 that says so. Fields this module does not know pass through to the chat
request, as the chat endpoint passes them to the provider.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from msgspec import Meta

from sidecache.errors import BadRequest
from sidecache.openai.decoding import convert
from sidecache.openai.ids import new_id
from sidecache.openai.schemas import MAX_TOKENS, Loose

__all__ = [
    "ResponsesRequest",
    "envelope",
    "from_completion",
    "output_items",
    "to_chat",
    "usage_of",
    "validate_responses",
]


class TextConfig(Loose):
    format: dict[str, Any] | None = None
    verbosity: str | None = None


class ResponsesRequest(Loose):
    model: Annotated[str, Meta(min_length=1)]
    input: str | list[Any]
    instructions: str | None = None
    stream: bool | None = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    text: TextConfig | None = None
    max_output_tokens: Annotated[int, Meta(ge=1, le=MAX_TOKENS)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    parallel_tool_calls: bool | None = None
    reasoning: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    background: bool | None = None
    previous_response_id: str | None = None
    conversation: Any = None
    prompt: Any = None


STATELESS = (
    "sidecache keeps no responses: send the whole conversation in `input` (earlier turns as"
    " items) instead"
)

# Responses fields that have no chat counterpart and do not change the answer: not forwarded.
_DROPPED = frozenset(
    {"input", "instructions", "text", "reasoning", "include", "truncation", "store",
     "stream_options", "max_tool_calls", "background", "conversation", "prompt",
     "previous_response_id", "max_output_tokens", "top_logprobs", "tools", "tool_choice",
     "stream", "metadata"}
)  # fmt: skip


def validate_responses(body: object) -> ResponsesRequest:
    """Check a decoded body; a bad field is a 400 naming it, stateful features a 400 saying
    the gateway keeps no responses."""
    req = convert(body, ResponsesRequest)
    if isinstance(req.input, list) and not req.input:
        raise BadRequest("`input` must not be empty", param="input")
    if req.previous_response_id is not None:
        raise BadRequest(
            f"`previous_response_id` is not supported: {STATELESS}", param="previous_response_id"
        )
    if req.store:
        raise BadRequest(f"`store: true` is not supported: {STATELESS}", param="store")
    if req.background:
        raise BadRequest("`background: true` is not supported: stream instead", param="background")
    if req.conversation is not None:
        raise BadRequest(f"`conversation` is not supported: {STATELESS}", param="conversation")
    if req.prompt is not None:
        raise BadRequest(
            "`prompt` (a stored prompt template) is not supported: send `instructions` instead",
            param="prompt",
        )
    return req


# -- request: Responses -> Chat Completions ----------------------------------------------------


def _part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise BadRequest("a content part must be an object", param=where)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        text = part.get("text")
        if not isinstance(text, str):
            raise BadRequest("a text part needs a string `text`", param=f"{where}.text")
        return {"type": "text", "text": text}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise BadRequest(
                "an input_image needs `image_url` (a URL or a data: URL); `file_id` needs"
                " OpenAI's file storage",
                param=f"{where}.image_url",
            )
        image: dict[str, Any] = {"url": url}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file = {k: part[k] for k in ("file_data", "file_id", "filename") if part.get(k)}
        return {"type": "file", "file": file}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": part.get("input_audio")}
    raise BadRequest(f"unsupported content part type `{kind}`", param=f"{where}.type")


def _content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest("`content` must be a string or a list of parts", param=where)
    parts = [_part(p, f"{where}[{i}]") for i, p in enumerate(content)]
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts) if len(parts) != 1 else parts[0]["text"]
    return parts


def _messages(req: ResponsesRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.instructions:
        out.append({"role": "system", "content": req.instructions})
    if isinstance(req.input, str):
        out.append({"role": "user", "content": req.input})
        return out
    for i, item in enumerate(req.input):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise BadRequest("an input item must be an object", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise BadRequest(
                    "`role` must be user, assistant, system or developer", param=f"{where}.role"
                )
            out.append({"role": role, "content": _content(item.get("content"), f"{where}.content")})
        elif kind == "function_call":
            name, args, call_id = item.get("name"), item.get("arguments"), item.get("call_id")
            if not (isinstance(name, str) and isinstance(args, str) and isinstance(call_id, str)):
                raise BadRequest(
                    "a function_call item needs string `call_id`, `name` and `arguments`",
                    param=where,
                )
            call = {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": args},
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(item.get("call_id"), str):
                raise BadRequest("a function_call_output needs a `call_id`", param=where)
            text = output if isinstance(output, str) else _content(output, f"{where}.output")
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
        elif kind == "reasoning":
            continue  # a model's own reasoning summary: chat models take no such input
        elif kind == "item_reference":
            raise BadRequest(f"`item_reference` inputs are not supported: {STATELESS}", param=where)
        else:
            raise BadRequest(
                f"input items of type `{kind}` are not supported (OpenAI runs those tools itself)",
                param=f"{where}.type",
            )
    return out


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools):
        if tool.get("type") != "function" or not isinstance(tool.get("name"), str):
            raise BadRequest(
                f"tool type `{tool.get('type')}` is not supported: sidecache serves the Responses"
                " API through Chat Completions, which takes function tools only",
                param=f"tools[{i}].type",
            )
        fn = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        return choice
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise BadRequest("tool_choice must be auto, none, required or a function", param="tool_choice")


def _response_format(fmt: dict[str, Any]) -> dict[str, Any] | None:
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise BadRequest(f"unsupported text.format type `{kind}`", param="text.format.type")


def to_chat(body: dict[str, Any], req: ResponsesRequest) -> dict[str, Any]:
    """The Chat Completions request a Responses request means (a plain dict, as sent)."""
    chat: dict[str, Any] = {k: v for k, v in body.items() if k not in _DROPPED}
    chat["messages"] = _messages(req)
    if req.max_output_tokens is not None:
        chat["max_completion_tokens"] = req.max_output_tokens
    if req.tools:
        chat["tools"] = _tools(req.tools)
    if req.tool_choice is not None:
        chat["tool_choice"] = _tool_choice(req.tool_choice)
    if req.text is not None:
        if req.text.format is not None and (rf := _response_format(req.text.format)):
            chat["response_format"] = rf
        if req.text.verbosity is not None:
            chat["verbosity"] = req.text.verbosity
    if req.reasoning and req.reasoning.get("effort"):
        chat["reasoning_effort"] = req.reasoning["effort"]
    if req.top_logprobs:
        chat["logprobs"] = True
        chat["top_logprobs"] = req.top_logprobs
    if req.stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


# -- answer: chat.completion -> Response ------------------------------------------------------


def usage_of(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat usage -> Responses usage."""
    if not usage:
        return None
    p = int(usage.get("prompt_tokens") or 0)
    c = int(usage.get("completion_tokens") or 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": p,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": c,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": int(usage.get("total_tokens") or p + c),
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str, refusal: str | None = None) -> dict[str, Any]:
    content = [text_part(text)] if refusal is None else [{"type": "refusal", "refusal": refusal}]
    return {
        "id": item_id,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": content,
    }


def call_item(item_id: str, call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") or {}
    return {
        "id": item_id,
        "type": "function_call",
        "status": "completed",
        "call_id": call.get("id") or item_id,
        "name": fn.get("name") or "",
        "arguments": fn.get("arguments") or "",
    }


def output_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A chat answer's message as Responses output items: the text (or refusal), then one
    function_call item per tool call."""
    items: list[dict[str, Any]] = []
    text = message.get("content") or ""
    calls = message.get("tool_calls") or []
    if text or message.get("refusal") or not calls:
        items.append(message_item(new_id("msg_"), text, message.get("refusal")))
    items += [call_item(new_id("fc_"), c) for c in calls]
    return items


_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def status_of(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """A chat finish_reason as a Response's ``status`` and ``incomplete_details``."""
    reason = _INCOMPLETE.get(finish_reason or "")
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def envelope(
    req: ResponsesRequest,
    *,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    incomplete: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Response object, with the request's settings echoed as OpenAI does."""
    fmt = req.text.format if req.text is not None and req.text.format else {"type": "text"}
    text: dict[str, Any] = {"format": fmt}
    if req.text is not None and req.text.verbosity:
        text["verbosity"] = req.text.verbosity
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "model": model,
        "output": output,
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "previous_response_id": None,
        "reasoning": {"effort": (req.reasoning or {}).get("effort"), "summary": None},
        "store": False,
        "temperature": req.temperature if req.temperature is not None else 1.0,
        "text": text,
        "tool_choice": req.tool_choice if req.tool_choice is not None else "auto",
        "tools": req.tools or [],
        "top_p": req.top_p if req.top_p is not None else 1.0,
        "truncation": req.truncation or "disabled",
        "usage": usage,
        "user": req.user,
        "metadata": req.metadata or {},
    }


def from_completion(completion: dict[str, Any], req: ResponsesRequest) -> dict[str, Any]:
    """A chat.completion (fresh or from the cache) as a Response object."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    status, incomplete = status_of(choice.get("finish_reason"))
    return envelope(
        req,
        response_id=new_id("resp_"),
        created_at=int(completion.get("created") or time.time()),
        model=completion.get("model") or req.model,
        status=status,
        output=output_items(choice.get("message") or {}),
        usage=usage_of(completion.get("usage")),
        incomplete=incomplete,
    )
