"""TraceConfig: every knob of one trace, with circuit-tracer 0.5.0's defaults (one source of defaults)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from circuit_atlas.tracer.errors import BadConfig


@dataclass
class TraceConfig:
    max_n_logits: int = 10             # at most this many logit targets ...
    desired_logit_prob: float = 0.95   # ... the fewest whose cumulative probability reaches this
    target_tokens: list[str | int] | None = None  # explicit targets (token strings or ids) instead
    max_feature_nodes: int | None = None  # None = every active feature becomes a node
    batch_size: int = 256              # source rows per backward batch (memory vs speed)
    update_interval: int = 4           # batches between re-rankings of features by influence
    node_threshold: float = 0.8        # keep nodes holding this fraction of the logit influence
    edge_threshold: float = 0.98       # keep edges holding this fraction of the edge influence

    def __post_init__(self) -> None:
        for name in ("node_threshold", "edge_threshold", "desired_logit_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BadConfig(f"{name} must be between 0 and 1, got {value}")
        for name in ("max_n_logits", "batch_size", "update_interval"):
            if getattr(self, name) < 1:
                raise BadConfig(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_feature_nodes is not None and self.max_feature_nodes < 0:
            raise BadConfig(f"max_feature_nodes must be >= 0, got {self.max_feature_nodes}")

    def to_dict(self) -> dict:
        return asdict(self)
