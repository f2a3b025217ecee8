"""A resumable, seeded stream of training prompts: a fresh permutation of the problems every epoch."""

from __future__ import annotations

import random


class PromptStream:
    """Yields problem indices in seeded random order, epoch after epoch; its position is checkpointed."""

    def __init__(self, num_problems: int, seed: int) -> None:
        if num_problems < 1:
            raise ValueError("PromptStream needs at least one problem")
        self.num_problems, self.seed = num_problems, seed
        self.epoch, self.position = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        order = list(range(self.num_problems))
        random.Random(f"negrl-prompts/{self.seed}/{epoch}").shuffle(order)
        return order

    def take(self, count: int) -> list[int]:
        taken = []
        while len(taken) < count:
            if self.position == self.num_problems:
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
            step = min(count - len(taken), self.num_problems - self.position)
            taken.extend(self._order[self.position : self.position + step])
            self.position += step
        return taken

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "num_problems": self.num_problems}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["num_problems"] != self.num_problems or state["seed"] != self.seed:
            raise ValueError("checkpoint's prompt stream was made for other data or another seed")
        self.epoch, self.position = state["epoch"], state["position"]
        self._order = self._permutation(self.epoch)
