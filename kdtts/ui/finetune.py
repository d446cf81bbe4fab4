"""The Distill tab's job service: kdtts.distill.finetune's Finetuner on the app's teacher and data
directory, with a per-visitor quota on starts and the data directory's byte budget."""
from __future__ import annotations

from kdtts.distill.finetune import MAX_USER_CHARS, Busy, Finetuner, FinetuneRequest, Job
from kdtts.ui import settings
from kdtts.ui.limits import RateLimiter
from kdtts.ui.service import Service
from kdtts.ui.storage import remove

__all__ = ["MAX_USER_CHARS", "Busy", "FinetuneManager", "FinetuneRequest"]
JOB_BYTES = 150 * 2**20
"""What one fine-tune may write before it ends (the teacher's reading of 500 sentences, its run folder,
the checkpoint): asked of the data directory's budget before it starts."""


class FinetuneManager(Finetuner):
    def __init__(self, service: Service) -> None:
        super().__init__(service.teacher, service.data, service.checkpoints, settings.max_checkpoints())
        self.limit = RateLimiter(settings.jobs_per_hour(), 3600, "fine-tunes from you")
        self.storage = service.storage
        remove(self.data / "finetune_uploads")  # at start-up no job holds an upload: a killed process's
        self.storage.sweepers.append(self.sweep)

    def admissible(self, owner: str) -> None:
        """Refuse, before anything is written, a start that would be refused: busy, quota or storage."""
        self.check_room(owner)
        self.limit.check(owner)
        self.storage.require(JOB_BYTES, "a fine-tune")

    def start(self, request: FinetuneRequest, owner: str = "local") -> Job:  # type: ignore[override]
        def admit() -> None:
            self.storage.require(JOB_BYTES, "a fine-tune")
            self.limit.hit(owner)
        return super().start(request, admit=admit, owner=owner)
