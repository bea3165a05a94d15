"""The record of one chat completion or pooling request, as compared and saved (JSON-safe, both ways)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Generation:
    """What a server generated for one prompt.

    ``token_ids``: the choice-level ``token_ids`` (``return_token_ids``), None when the server
    sent none; ``tokens``: the token strings of the logprobs content (the fallback basis);
    ``top_logprobs``: per position, token string -> logprob of the top alternatives.
    ``pooled``: a pooling model's output instead of tokens: its vectors (one for a sequence-level
    task such as ``embed``, one per token for ``token_embed``/``token_classify``).
    """

    model: str
    text: str
    token_ids: list[int] | None
    tokens: list[str]
    top_logprobs: list[dict[str, float]]
    finish_reason: str | None = None
    prompt_token_ids: list[int] | None = None
    extra: dict = field(default_factory=dict)
    pooled: list[list[float]] | None = None

    @property
    def length(self) -> int:
        if self.pooled is not None:
            return len(self.pooled)
        return len(self.token_ids) if self.token_ids is not None else len(self.tokens)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Generation:
        return cls(
            model=str(data["model"]),
            text=str(data["text"]),
            token_ids=None if data.get("token_ids") is None else [int(t) for t in data["token_ids"]],
            tokens=[str(t) for t in data.get("tokens") or ()],
            top_logprobs=[
                {str(k): float(v) for k, v in (entry or {}).items()} for entry in data.get("top_logprobs") or ()
            ],
            finish_reason=data.get("finish_reason"),
            prompt_token_ids=None
            if data.get("prompt_token_ids") is None
            else [int(t) for t in data["prompt_token_ids"]],
            extra=dict(data.get("extra") or {}),
            pooled=None if data.get("pooled") is None else [[float(x) for x in row] for row in data["pooled"]],
        )
