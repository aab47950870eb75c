"""The words people search photos by: the WordNet taxonomy (imagenet_taxonomy.json) composed with
the reviewed layer (vocabulary.toml): noisy concepts dropped, scene and category concepts added,
a threshold per label, and what a typed word means (synonyms, aliases, plurals, case, accents);
and the scene words read off the embedding (scene_heads.json, indexer.model.scenes).

No torch here: the CLI, the API and the app resolve query words with it without loading a model.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from typing import Any

from indexer.errors import ModelError
from indexer.model.properties import NAMES as PROPERTY_LABELS
from indexer.model.scenes import SCENES_FILE, SceneHeads
from indexer.model.taxonomy import Taxonomy

FACE_LABELS = ("person", "people", "face", "portrait", "group")  # indexer.model.faces
TAXONOMY_FILE = "imagenet_taxonomy.json"
VOCABULARY_FILE = "vocabulary.toml"


def normalise(word: str) -> str:
    """How typed words compare: case-folded, accents stripped, spaces collapsed ("Café" == "cafe")."""
    decomposed = unicodedata.normalize("NFKD", word)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().replace("_", " ").split())


def singulars(word: str) -> list[str]:
    """What a plural may stand for, most likely first (English rules, good enough for labels)."""
    out = []
    if word.endswith("ies") and len(word) > 4:
        out.append(word[:-3] + "y")  # butterflies
    if word.endswith(("ches", "shes", "sses", "xes", "oes")):
        out.append(word[:-2])  # beaches, boxes, tomatoes
    if word.endswith("ves"):
        out += [word[:-3] + "f", word[:-3] + "fe"]  # wolves, knives
    if word.endswith("s") and not word.endswith("ss"):
        out.append(word[:-1])  # cats
    if word.endswith("men"):
        out.append(word[:-3] + "man")
    if word == "people":
        out.append("person")
    return out


@dataclass(frozen=True)
class Vocabulary:
    """`taxonomy`: the classes with their composed parents (what the labeller sums);
    `thresholds`: per label, the minimum confidence at which it is stored."""

    taxonomy: Taxonomy
    class_threshold: float
    concept_threshold: float
    thresholds: dict[str, float] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # normalised word -> label name
    digest: str = ""  # of the rule files, for model_id
    # a label a part of the picture reaches at this times its threshold is stored (0: parts unread);
    # `whole_only` labels (scenes) come from the whole picture alone
    part_factor: float = 0.0
    whole_only: frozenset[str] = frozenset()
    # words the scene heads read off the embedding (None: no heads); the parents of those that are
    # no concept of the taxonomy (a forest is trees, nature, a landscape)
    scenes: SceneHeads | None = None
    scene_parents: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def threshold(self, name: str, is_class: bool) -> float:
        return self.thresholds.get(name, self.class_threshold if is_class else self.concept_threshold)

    @cached_property
    def labels(self) -> dict[str, str]:
        """Every label name a record can carry (classes, concepts, faces, properties), by its
        normalised form."""
        names = (*FACE_LABELS, *PROPERTY_LABELS, *self.taxonomy.names, *self.taxonomy.concepts, *self.scene_parents)
        return {normalise(n): n for n in names}

    @cached_property
    def words(self) -> dict[str, str]:
        """Every normalised word it reads (labels, aliases, WordNet synonyms) -> the label it means."""
        return {**self.aliases, **self.labels}

    def resolve(self, word: str) -> str:
        """The label a typed word means: itself (any case or accents), an alias or synonym, or a
        plural's singular; a word the vocabulary does not know comes back as typed."""
        key = normalise(word)
        for candidate in (key, *singulars(key)):
            if candidate in self.labels:
                return self.labels[candidate]
            if candidate in self.aliases:
                return self.aliases[candidate]
        return word.strip()

    def resolve_all(self, words: Iterable[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.resolve(w) for w in words if w.strip()))

    @classmethod
    def from_files(cls, taxonomy: dict[str, Any], rules: dict[str, Any], digest: str = "",
                   scenes: SceneHeads | None = None) -> Vocabulary:
        """Compose the generated taxonomy with the reviewed rules (and the scene heads, whose words
        are its concepts or [scenes] words); ModelError names a bad rule."""
        classes = taxonomy["classes"]
        names = [c["name"] for c in classes]
        drop = set(rules.get("drop", {}).get("concepts", []))
        wordnet_concepts = {p for c in classes for p in c["parents"]}
        if drop - wordnet_concepts:
            raise ModelError(f"{VOCABULARY_FILE}: dropped concepts that do not exist: "
                             f"{', '.join(sorted(drop - wordnet_concepts))}")
        parents = [[p for p in c["parents"] if p not in drop] for c in classes]
        concepts: dict[str, dict] = rules.get("concepts", {})
        members = _expand(concepts, names, parents)
        for concept, indices in members.items():
            for i in indices:
                parents[i].append(concept)
        size: dict[str, int] = {}
        for ps in parents:
            for p in ps:
                size[p] = size.get(p, 0) + 1
        ordered = tuple(tuple(sorted(dict.fromkeys(ps), key=lambda p: (size[p], p))) for ps in parents)
        tax = Taxonomy(tuple(names), ordered)
        scene_rules = rules.get("scenes", {})
        scene_parents = {w: tuple(ps) for w, ps in scene_rules.get("parents", {}).items()}
        if scenes is not None and "words" in scene_rules:
            scenes = scenes.chosen(list(scene_rules["words"]), *_scene_cuts(scene_rules))
        limits = rules.get("thresholds", {})
        known = set(names) | set(tax.concepts) | set(FACE_LABELS) | set(PROPERTY_LABELS) | set(scene_parents)
        clashing = sorted(set(scene_parents) & (set(names) | set(tax.concepts)))
        if clashing:
            raise ModelError(f"{VOCABULARY_FILE}: [scenes] words that are already classes or concepts: "
                             f"{', '.join(clashing)}")
        unknown = sorted({p for ps in scene_parents.values() for p in ps} - known)
        if unknown:
            raise ModelError(f"{VOCABULARY_FILE}: [scenes] parents that are no label: {', '.join(unknown)}")
        unknown = sorted(set(scenes.names if scenes else ()) - set(names) - set(tax.concepts) - set(scene_parents))
        if unknown:
            raise ModelError(f"{SCENES_FILE}: heads for words that are neither a class, a concept nor in "
                             f"{VOCABULARY_FILE} [scenes]: {', '.join(unknown)}")
        unknown = sorted(set(limits.get("labels", {})) - known)
        if unknown:
            raise ModelError(f"{VOCABULARY_FILE}: thresholds for labels that do not exist: {', '.join(unknown)}")
        aliases = {}
        for c in classes:  # WordNet synonyms: "lakeside" means the class lakeshore
            for synonym in c.get("synonyms", []):
                aliases.setdefault(normalise(synonym), c["name"])
        for word, label in rules.get("aliases", {}).items():
            if label not in known:
                raise ModelError(f"{VOCABULARY_FILE}: alias {word!r} names no label {label!r}")
            aliases[normalise(word)] = label
        labels = {normalise(n) for n in known}
        aliases = {w: label for w, label in aliases.items() if w not in labels}  # a label means itself
        parts = rules.get("parts", {})
        whole_only = frozenset(parts.get("whole_only", []))
        if whole_only - known:
            raise ModelError(f"{VOCABULARY_FILE}: whole_only names labels that do not exist: "
                             f"{', '.join(sorted(whole_only - known))}")
        return cls(tax, float(limits.get("class", 0.25)), float(limits.get("concept", 0.3)),
                   {k: float(v) for k, v in limits.get("labels", {}).items()}, aliases, digest,
                   float(parts.get("stricter", 0.0)), whole_only, scenes, scene_parents)


def _scene_cuts(scene_rules: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """[scenes] stricter and thresholds as numbers; ModelError names a value that is not one."""
    cuts = scene_rules.get("thresholds", {})
    if not isinstance(cuts, dict):
        raise ModelError(f"{VOCABULARY_FILE}: [scenes] thresholds must be a table of word = number, not {cuts!r}")
    try:
        return float(scene_rules.get("stricter", 0.0)), {w: float(t) for w, t in cuts.items()}
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{VOCABULARY_FILE}: [scenes] stricter and thresholds must be numbers ({exc})") from exc


def _expand(concepts: dict[str, dict], names: list[str], parents: list[list[str]]) -> dict[str, set[int]]:
    """Class indices under each reviewed concept: its members (classes, WordNet concepts, other
    reviewed concepts) and the reviewed concepts that name it as a parent, transitively."""
    index = {n: i for i, n in enumerate(names)}
    wordnet = {}
    for i, ps in enumerate(parents):
        for p in ps:
            wordnet.setdefault(p, set()).add(i)
    parts: dict[str, set[str]] = {c: set(spec.get("members", [])) for c, spec in concepts.items()}
    for c, spec in concepts.items():
        for parent in spec.get("parents", []):
            parts.setdefault(parent, set()).add(c)
    out: dict[str, set[int]] = {}

    def classes_of(concept: str, seen: tuple[str, ...]) -> set[int]:
        if concept in out:
            return out[concept]
        if concept in seen:
            raise ModelError(f"{VOCABULARY_FILE}: concept {concept!r} contains itself")
        found: set[int] = set()
        for m in parts.get(concept, ()):
            if m in index:
                found.add(index[m])
            elif m in parts:
                found |= classes_of(m, (*seen, concept))
            elif m in wordnet:
                found |= wordnet[m]
            else:
                raise ModelError(f"{VOCABULARY_FILE}: {concept!r} has a member {m!r} that is no class or concept")
        if concept in wordnet:  # a reviewed concept of a WordNet name keeps WordNet's classes too
            found |= wordnet[concept]
        for name in concepts.get(concept, {}).get("except", []):
            if name not in index:
                raise ModelError(f"{VOCABULARY_FILE}: {concept!r} excepts {name!r}, which is no class")
            found.discard(index[name])
        out[concept] = found
        return found

    for concept in parts:
        if concept in index:
            raise ModelError(f"{VOCABULARY_FILE}: concept {concept!r} is also a class name")
        classes_of(concept, ())
    return out


def for_model(name: str) -> Vocabulary:
    """The vocabulary query words are read with: the default model's, or, for your own model, one
    that knows only the face and property labels (your classes match as they are typed)."""
    from indexer.model.labeller import DEFAULT_MODEL

    return imagenet() if name == DEFAULT_MODEL else Vocabulary(Taxonomy((), ()), 0.0, 0.0)


@cache
def imagenet() -> Vocabulary:
    """The default model's vocabulary, from the package's data files (read once per process)."""
    data = resources.files("indexer.data")
    raw_taxonomy = data.joinpath(TAXONOMY_FILE).read_bytes()
    raw_rules = data.joinpath(VOCABULARY_FILE).read_bytes()
    digest = hashlib.sha256(raw_taxonomy + b"\0" + raw_rules).hexdigest()[:12]
    try:
        rules = tomllib.loads(raw_rules.decode())
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{VOCABULARY_FILE}: {exc}") from exc
    heads = data.joinpath(SCENES_FILE)
    scenes = SceneHeads.from_json(heads.read_bytes()) if heads.is_file() else None
    return Vocabulary.from_files(json.loads(raw_taxonomy), rules, digest, scenes)
