"""The Distill tab's job service: kdtts.distill.finetune's Finetuner on the app's teacher and data
directory, with a per-visitor quota on starts."""
from __future__ import annotations

from kdtts.distill.finetune import MAX_USER_CHARS, Busy, Finetuner, FinetuneRequest, Job
from kdtts.ui import settings
from kdtts.ui.limits import RateLimiter
from kdtts.ui.service import Service

__all__ = ["MAX_USER_CHARS", "Busy", "FinetuneManager", "FinetuneRequest"]


class FinetuneManager(Finetuner):
    def __init__(self, service: Service) -> None:
        super().__init__(service.teacher, service.data, service.checkpoints, settings.max_checkpoints())
        self.limit = RateLimiter(settings.jobs_per_hour(), 3600, "fine-tunes from you")

    def start(self, request: FinetuneRequest, owner: str = "local") -> Job:  # type: ignore[override]
        return super().start(request, admit=lambda: self.limit.hit(owner), owner=owner)
