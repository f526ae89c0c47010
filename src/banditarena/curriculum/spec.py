"""Curricula as data: skills, a prerequisite graph, and activities with item generators or item banks.

A curriculum YAML file::

    name: arith
    grade: 2                       # default reading grade of the learners
    skills:
      - id: add
        name: Addition
        prereqs: ["decompose:1"]   # "skill" (its top level) or "skill:level"
        hint: "Add the ones first."   # the template hint (always safe, always available)
    activities:
      - id: add-1
        skill: add
        level: 1                   # levels of a skill are 1, 2, 3... in order
        generator: {kind: add, digits: 1}      # or bank: {...}
        requires: [decompose-1]    # optional: overrides the prerequisites derived from the skills
    expert_sequence: [decompose-1, add-1, ...]  # optional: the predefined order of the expert baseline

By default level ``l > 1`` of a skill requires level ``l - 1``, and level 1 requires the activities named by
the skill's ``prereqs``. Errors (a prerequisite cycle, an activity naming an unknown skill, an empty item
bank...) raise :class:`~banditarena.errors.ConfigError` with one line naming the file and the item.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, field_validator, model_validator

from banditarena.config import Model
from banditarena.curriculum.items import (
    GENERATORS,
    Item,
    WordProblem,
    generator_params,
    gsm8k_problems,
    select_problems,
)
from banditarena.errors import ConfigError, DataError
from banditarena.text import iter_jsonl
from banditarena.types import stable_hash

BUILTIN = ("arith", "gsm8k")


class SkillSpec(Model):
    id: str
    name: str | None = None
    prereqs: list[str] = Field(default_factory=list)
    hint: str | None = None
    grade: int | None = Field(None, ge=0, le=12)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not v.strip() or ":" in v:
            raise ValueError(f"skill id {v!r} must be non-empty and contain no ':'")
        return v


class GeneratorSpec(Model):
    model_config = ConfigDict(extra="allow")
    kind: str


class BankItem(Model):
    question: str
    answer: float
    solution: str | None = None


class BankSpec(Model):
    kind: Literal["gsm8k", "items", "jsonl"] = "items"
    path: str | None = None                    # gsm8k / jsonl file (data:REL, relative to the curriculum, abs)
    items: list[BankItem] | None = None        # inline items
    ops_only: list[Literal["add", "sub", "mul", "div"]] | None = None   # gsm8k: no other operation
    ops_need: list[list[Literal["add", "sub", "mul", "div"]]] | None = None  # gsm8k: one of each group
    min_steps: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1)
    limit: int | None = Field(None, ge=1)      # keep at most this many (the first ones, stable)


class ActivitySpec(Model):
    id: str
    skill: str
    level: int = Field(1, ge=1)
    name: str | None = None
    generator: GeneratorSpec | None = None
    bank: BankSpec | None = None
    requires: list[str] | None = None
    hint: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ActivitySpec:
        if (self.generator is None) == (self.bank is None):
            raise ValueError("give exactly one of generator or bank")
        return self


class CurriculumSpec(Model):
    name: str
    title: str | None = None
    grade: int = Field(3, ge=0, le=12)
    skills: list[SkillSpec]
    activities: list[ActivitySpec]
    expert_sequence: list[str] | None = None


@dataclass
class Activity:
    index: int
    id: str
    skill: int
    skill_id: str
    level: int
    name: str
    requires: list[int] = field(default_factory=list)
    hint: str = ""
    grade: int = 3
    generator: tuple[str, dict[str, Any]] | None = None
    bank: list[Item] | None = None


class Curriculum:
    """A validated, compiled curriculum: activities are indexed ``0..n_activities-1`` (bandit arms)."""

    def __init__(self, spec: CurriculumSpec, source: str, base: Path | None = None) -> None:
        self.spec = spec
        self.source = source
        self.name = spec.name
        self.title = spec.title or spec.name
        self.grade = spec.grade
        self._compile(base)

    # ------------------------------------------------------------------------------------- compile
    def _err(self, what: str) -> ConfigError:
        return ConfigError(f"{self.source}: {what}")

    def _compile(self, base: Path | None) -> None:
        spec = self.spec
        if not spec.skills:
            raise self._err("no skills")
        if not spec.activities:
            raise self._err("no activities")
        skill_ids = [s.id for s in spec.skills]
        dup = sorted({s for s in skill_ids if skill_ids.count(s) > 1})
        if dup:
            raise self._err(f"skill '{dup[0]}' is defined twice")
        act_ids = [a.id for a in spec.activities]
        dup = sorted({a for a in act_ids if act_ids.count(a) > 1})
        if dup:
            raise self._err(f"activity '{dup[0]}' is defined twice")
        self.skills = spec.skills
        self.skill_index = {s: i for i, s in enumerate(skill_ids)}
        by_skill: dict[str, dict[int, str]] = {s: {} for s in skill_ids}
        for a in spec.activities:
            if a.skill not in self.skill_index:
                raise self._err(f"activity '{a.id}': unknown skill '{a.skill}' (skills: {', '.join(skill_ids)})")
            if a.level in by_skill[a.skill]:
                raise self._err(f"activity '{a.id}': skill '{a.skill}' already has level {a.level} "
                                f"('{by_skill[a.skill][a.level]}')")
            by_skill[a.skill][a.level] = a.id
        for s, levels in by_skill.items():
            if levels and sorted(levels) != list(range(1, len(levels) + 1)):
                raise self._err(f"skill '{s}': levels must be 1..{len(levels)}, got {sorted(levels)}")
        self.index = {a: i for i, a in enumerate(act_ids)}

        def skill_ref(owner: str, ref: str) -> str:
            sk, _, lvl = ref.partition(":")
            if sk not in self.skill_index:
                raise self._err(f"skill '{owner}': prerequisite '{ref}' names an unknown skill '{sk}'")
            levels = by_skill[sk]
            if not levels:
                raise self._err(f"skill '{owner}': prerequisite skill '{sk}' has no activities")
            if lvl:
                try:
                    lv = int(lvl)
                except ValueError:
                    raise self._err(f"skill '{owner}': prerequisite '{ref}' level must be a number") from None
                if lv not in levels:
                    raise self._err(f"skill '{owner}': prerequisite '{ref}': skill '{sk}' has no level {lv}")
                return levels[lv]
            return levels[max(levels)]

        skill_req = {s.id: [skill_ref(s.id, r) for r in s.prereqs] for s in spec.skills}
        acts: list[Activity] = []
        for i, a in enumerate(spec.activities):
            sk = spec.skills[self.skill_index[a.skill]]
            if a.requires is not None:
                for r in a.requires:
                    if r not in self.index:
                        raise self._err(f"activity '{a.id}': requires unknown activity '{r}'")
                req = [self.index[r] for r in a.requires]
            elif a.level > 1:
                req = [self.index[by_skill[a.skill][a.level - 1]]]
            else:
                req = [self.index[r] for r in skill_req[a.skill]]
            if i in req:
                raise self._err(f"activity '{a.id}' requires itself")
            act = Activity(index=i, id=a.id, skill=self.skill_index[a.skill], skill_id=a.skill, level=a.level,
                           name=a.name or sk.name or a.id, requires=sorted(set(req)),
                           hint=(a.hint or sk.hint or "Read the problem again slowly. What is it asking for?"),
                           grade=sk.grade if sk.grade is not None else spec.grade)
            if a.generator is not None:
                kind = a.generator.kind
                if kind not in GENERATORS:
                    raise self._err(f"activity '{a.id}': unknown generator kind '{kind}' "
                                    f"(known: {', '.join(sorted(GENERATORS))})")
                params = {k: v for k, v in (a.generator.model_extra or {}).items()}
                allowed = generator_params(kind)
                bad = [k for k in params if k not in allowed]
                if bad:
                    raise self._err(f"activity '{a.id}': generator '{kind}' has no parameter '{bad[0]}' "
                                    f"(parameters: {', '.join(allowed)})")
                try:  # a generator that cannot make an item is a config error, found now, not in a lesson
                    GENERATORS[kind](np.random.default_rng(0), **params)
                except Exception as exc:  # noqa: BLE001 - any failure of the user's parameters
                    raise self._err(f"activity '{a.id}': generator '{kind}' fails with {params}: {exc}") from None
                act.generator = (kind, params)
            else:
                act.bank = self._bank(a, a.bank, base)  # type: ignore[arg-type]
            acts.append(act)
        self.activities = acts
        self._check_cycles()
        if spec.expert_sequence is not None:
            for a in spec.expert_sequence:
                if a not in self.index:
                    raise self._err(f"expert_sequence: unknown activity '{a}'")
            missing = [a for a in act_ids if a not in spec.expert_sequence]
            if missing:
                raise self._err(f"expert_sequence: activity '{missing[0]}' is missing")
            if len(set(spec.expert_sequence)) != len(spec.expert_sequence):
                raise self._err("expert_sequence: an activity is listed twice")
            self.expert_sequence = [self.index[a] for a in spec.expert_sequence]
        else:
            self.expert_sequence = self.topological_order()

    def _bank(self, a: ActivitySpec, b: BankSpec, base: Path | None) -> list[Item]:
        from banditarena.paths import resolve_path

        items: list[Item] = []
        where = ""
        if b.kind == "items":
            if not b.items:
                raise self._err(f"activity '{a.id}': item bank is empty (bank.items has no items)")
            items = [Item(f"{a.id}/{k}", a.id, it.question, it.answer, it.solution) for k, it in enumerate(b.items)]
        else:
            if not b.path:
                raise self._err(f"activity '{a.id}': bank kind '{b.kind}' needs path")
            p = resolve_path(b.path, base)
            where = f" in {p}"
            if not p.is_file():
                raise self._err(f"activity '{a.id}': item bank file {p} not found")
            if b.kind == "gsm8k":
                try:
                    probs: list[WordProblem] = gsm8k_problems(p)
                except DataError as exc:
                    raise self._err(f"activity '{a.id}': {exc}") from None
                sel = select_problems(probs, b.ops_only, b.ops_need, b.min_steps, b.max_steps)
                items = [Item(f"{a.id}/gsm8k-{w.index}", a.id, w.question, w.answer, w.solution) for w in sel]
            else:
                try:
                    rows = list(iter_jsonl(p))
                except DataError as exc:
                    raise self._err(f"activity '{a.id}': {exc}") from None
                for lineno, row in rows:
                    try:
                        items.append(Item(f"{a.id}/{lineno - 1}", a.id, str(row["question"]), float(row["answer"]),
                                          row.get("solution")))
                    except (KeyError, TypeError, ValueError, AttributeError) as exc:
                        raise self._err(f"activity '{a.id}': {p}:{lineno}: not an item ({exc})") from None
        if b.limit is not None:
            items = items[: b.limit]
        if not items:
            raise self._err(f"activity '{a.id}': item bank is empty (no item matches{where})")
        return items

    def _check_cycles(self) -> None:
        state = [0] * len(self.activities)  # 0 new, 1 on stack, 2 done
        stack: list[int] = []

        def visit(i: int) -> None:
            state[i] = 1
            stack.append(i)
            for j in self.activities[i].requires:
                if state[j] == 1:
                    cyc = stack[stack.index(j):] + [j]
                    raise self._err("prerequisite cycle " + " -> ".join(self.activities[k].id for k in cyc))
                if state[j] == 0:
                    visit(j)
            stack.pop()
            state[i] = 2

        for i in range(len(self.activities)):
            if state[i] == 0:
                visit(i)

    # ------------------------------------------------------------------------------------- queries
    @property
    def n_activities(self) -> int:
        return len(self.activities)

    @property
    def n_skills(self) -> int:
        return len(self.skills)

    @property
    def activity_ids(self) -> list[str]:
        return [a.id for a in self.activities]

    def topological_order(self) -> list[int]:
        """Activities ordered so every prerequisite comes first (ties: lower level, then file order)."""
        done: set[int] = set()
        order: list[int] = []
        remaining = sorted(range(self.n_activities), key=lambda i: (self.activities[i].level, i))
        while remaining:
            for i in remaining:
                if all(r in done for r in self.activities[i].requires):
                    order.append(i)
                    done.add(i)
                    remaining.remove(i)
                    break
        return order

    @cached_property
    def requires_matrix(self) -> np.ndarray:
        """``R[a, b]`` is True when ``b`` is a direct prerequisite of ``a``; shape (A, A)."""
        r = np.zeros((self.n_activities, self.n_activities), dtype=bool)
        for a in self.activities:
            r[a.index, a.requires] = True
        return r

    @cached_property
    def ancestors(self) -> np.ndarray:
        """``T[a, b]`` is True when ``b`` is a direct or indirect prerequisite of ``a``; shape (A, A)."""
        t = self.requires_matrix.copy()
        for _ in range(self.n_activities):
            nt = t | (t.astype(np.int32) @ t.astype(np.int32) > 0)
            if (nt == t).all():
                break
            t = nt
        return t

    @cached_property
    def activity_skill(self) -> np.ndarray:
        return np.array([a.skill for a in self.activities], dtype=np.int64)

    @cached_property
    def activity_level(self) -> np.ndarray:
        return np.array([a.level for a in self.activities], dtype=np.int64)

    @cached_property
    def roots(self) -> np.ndarray:
        """Activities without prerequisites (the initial zone of proximal development)."""
        return np.array([not a.requires for a in self.activities], dtype=bool)

    @cached_property
    def fingerprint(self) -> str:
        """Content address of the curriculum (its spec, and the banks' items)."""
        banks = [[(it.id, it.answer) for it in (a.bank or [])] for a in self.activities]
        return stable_hash({"spec": self.spec.model_dump(mode="json"), "banks": banks}, 16)

    def item(self, activity: int, rng: np.random.Generator) -> Item:
        """A problem of ``activity`` drawn with ``rng``."""
        a = self.activities[activity]
        if a.bank is not None:
            return a.bank[int(rng.integers(len(a.bank)))]
        assert a.generator is not None
        kind, params = a.generator
        q, ans, sol = GENERATORS[kind](rng, **params)
        key = zlib.crc32(q.encode()) & 0xFFFFFFFF
        return Item(f"{a.id}/{key:08x}", a.id, q, float(ans), sol)

    def describe(self) -> list[dict[str, Any]]:
        """One row per activity: id, skill, level, prerequisites, source and number of items."""
        rows = []
        for a in self.activities:
            rows.append({"activity": a.id, "skill": a.skill_id, "level": a.level,
                         "requires": ", ".join(self.activities[r].id for r in a.requires) or "-",
                         "source": f"generator {a.generator[0]}" if a.generator else "bank",
                         "items": "generated" if a.generator else len(a.bank or [])})
        return rows


def builtin_path(name: str) -> Path:
    """Path of a curriculum shipped with the package (``arith``, ``gsm8k``)."""
    return Path(str(resources.files("banditarena.curriculum") / "curricula" / f"{name}.yaml"))


def load_curriculum(src: str | Path, base: Path | None = None) -> Curriculum:
    """Load a curriculum by built-in name (``arith``, ``gsm8k``) or YAML path (relative to ``base``)."""
    from banditarena.config import load_yaml, validate
    from banditarena.paths import resolve_path

    s = str(src)
    path = builtin_path(s) if s in BUILTIN else resolve_path(s, base)
    if not path.exists():
        raise ConfigError(f"{path}: curriculum file not found (built-in curricula: {', '.join(BUILTIN)})")
    data = load_yaml(path)
    spec = validate(CurriculumSpec, data, path)
    return Curriculum(spec, str(path), path.resolve().parent)
