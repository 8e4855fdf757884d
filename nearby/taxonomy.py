"""The fixed category taxonomy of the fake profiles, and how a profile draws from it.

The taxonomy is a list of *families* (``developers``, ``healthcare``,
``trades``, ...), each with an ordered list of *specialties*
(``python-developer``, ``nurse``, ``electrician``, ...). Every slug, family or
specialty, is a category of its own, with one Redis index.

A profile draws:

1. one family, with probability proportional to :attr:`Family.weight`
   (the weights of :data:`FAMILIES` add up to 100, so a weight reads as the
   percentage of profiles in that family);
2. 0, 1 or 2 distinct specialties of that family, in the proportions of
   :data:`SPECIALTY_COUNT_WEIGHTS`; within a family the specialty of rank
   ``r`` (0 for the first listed) weighs ``1 / (r + 1) ** ZIPF_EXPONENT``, so
   the list is written most common first and its end is a long tail.

So every profile has 1 to 3 categories, the family first. At 100,000
profiles the families hold about 3,000 to 14,000 members each, the first
specialties of the large families 2,000 to 4,000, the tail a few hundred.

Growing the taxonomy to thousands of categories means adding families and
longer specialty lists: weights by rank need no tuning per slug, and draws
use cumulative weights and a binary search, so their cost grows with the
logarithm of the list, not its length.
"""

import bisect
import itertools
import random
from dataclasses import dataclass

from nearby.category import is_category

SPECIALTY_COUNT_WEIGHTS = (30, 45, 25)
"""Relative weights of a profile having 0, 1 and 2 specialties."""

ZIPF_EXPONENT = 1.0
"""Exponent of the rank weights of the specialties within a family."""


@dataclass(frozen=True, slots=True)
class Family:
    """A family of categories: its own slug, a job title, its specialties.

    ``weight`` is relative to the other families; ``specialties`` go most
    common first.
    """

    slug: str
    title: str
    weight: float
    specialties: tuple[str, ...]


FAMILIES = (
    Family(
        "developers",
        "Software developer",
        14,
        (
            "python-developer",
            "javascript-developer",
            "java-developer",
            "typescript-developer",
            "csharp-developer",
            "php-developer",
            "go-developer",
            "cpp-developer",
            "ruby-developer",
            "rust-developer",
            "kotlin-developer",
            "swift-developer",
            "scala-developer",
            "elixir-developer",
        ),
    ),
    Family(
        "healthcare",
        "Healthcare worker",
        11,
        (
            "nurse",
            "general-practitioner",
            "pharmacist",
            "physiotherapist",
            "dentist",
            "midwife",
            "paramedic",
            "psychologist",
            "radiologist",
            "veterinarian",
        ),
    ),
    Family(
        "trades",
        "Tradesperson",
        10,
        (
            "electrician",
            "plumber",
            "carpenter",
            "mechanic",
            "welder",
            "painter-decorator",
            "roofer",
            "hvac-technician",
            "mason",
            "locksmith",
        ),
    ),
    Family(
        "education",
        "Educator",
        9,
        (
            "primary-teacher",
            "secondary-teacher",
            "university-lecturer",
            "language-teacher",
            "tutor",
            "special-needs-teacher",
            "music-teacher",
        ),
    ),
    Family(
        "sales",
        "Salesperson",
        9,
        (
            "sales-representative",
            "account-executive",
            "retail-sales-associate",
            "sales-manager",
            "business-developer",
            "real-estate-agent",
        ),
    ),
    Family(
        "designers",
        "Designer",
        7,
        (
            "ux-designer",
            "graphic-designer",
            "ui-designer",
            "product-designer",
            "interior-designer",
            "motion-designer",
            "fashion-designer",
            "game-designer",
        ),
    ),
    Family(
        "data",
        "Data specialist",
        7,
        (
            "data-analyst",
            "data-engineer",
            "data-scientist",
            "machine-learning-engineer",
            "bi-developer",
            "database-administrator",
            "statistician",
        ),
    ),
    Family(
        "finance",
        "Finance professional",
        7,
        (
            "accountant",
            "financial-analyst",
            "auditor",
            "bookkeeper",
            "tax-advisor",
            "financial-planner",
            "controller",
        ),
    ),
    Family(
        "marketing",
        "Marketer",
        6,
        (
            "digital-marketer",
            "content-marketer",
            "social-media-manager",
            "seo-specialist",
            "brand-manager",
            "copywriter",
            "pr-specialist",
        ),
    ),
    Family(
        "devops",
        "DevOps engineer",
        5,
        (
            "cloud-engineer",
            "site-reliability-engineer",
            "platform-engineer",
            "kubernetes-engineer",
            "network-engineer",
            "release-engineer",
        ),
    ),
    Family(
        "hospitality",
        "Hospitality worker",
        5,
        (
            "chef",
            "waiter",
            "barista",
            "bartender",
            "hotel-receptionist",
            "event-planner",
        ),
    ),
    Family(
        "legal",
        "Legal professional",
        4,
        (
            "lawyer",
            "paralegal",
            "compliance-officer",
            "legal-counsel",
            "notary",
        ),
    ),
    Family(
        "security",
        "Security specialist",
        3,
        (
            "security-engineer",
            "security-analyst",
            "penetration-tester",
            "security-architect",
        ),
    ),
    Family(
        "logistics",
        "Logistics worker",
        3,
        (
            "truck-driver",
            "warehouse-operative",
            "courier",
            "dispatcher",
            "supply-chain-planner",
        ),
    ),
)
"""Every family, most common first; the weights add up to 100."""

TITLE_OVERRIDES = {
    "bi-developer": "BI developer",
    "cpp-developer": "C++ developer",
    "csharp-developer": "C# developer",
    "hvac-technician": "HVAC technician",
    "javascript-developer": "JavaScript developer",
    "pr-specialist": "PR specialist",
    "seo-specialist": "SEO specialist",
    "typescript-developer": "TypeScript developer",
    "ui-designer": "UI designer",
    "ux-designer": "UX designer",
}
"""Job titles that the slug alone cannot spell (acronyms, symbols, brands)."""

_FAMILY_TITLES = {family.slug: family.title for family in FAMILIES}


def title(slug: str) -> str:
    """Return the job title of a specialty or family slug.

    A family's title is its own; a specialty's comes from
    :data:`TITLE_OVERRIDES` or, by default, from the slug itself
    (``painter-decorator`` becomes ``Painter decorator``).
    """
    if slug in _FAMILY_TITLES:
        return _FAMILY_TITLES[slug]
    if slug in TITLE_OVERRIDES:
        return TITLE_OVERRIDES[slug]
    return slug.replace("-", " ").capitalize()


def categories() -> tuple[str, ...]:
    """Return every category slug of the taxonomy, each family then its specialties."""
    return tuple(
        itertools.chain.from_iterable(
            (family.slug, *family.specialties) for family in FAMILIES
        )
    )


class Sampler:
    """Draws the categories and the job title of one profile at a time.

    Build it once (it precomputes the cumulative weights) and call
    :meth:`draw` with the random generator that owns the profile, so the
    draw is reproducible.

    Raises:
        ValueError: a slug is not a valid category or appears twice, or a
            weight is not positive.
    """

    def __init__(self, families: tuple[Family, ...] = FAMILIES):
        _check(families)
        self._families = families
        self._family_cumulative = list(
            itertools.accumulate(family.weight for family in families)
        )
        self._specialty_cumulative = [
            list(
                itertools.accumulate(
                    1 / (rank + 1) ** ZIPF_EXPONENT
                    for rank in range(len(family.specialties))
                )
            )
            for family in families
        ]
        self._count_cumulative = list(itertools.accumulate(SPECIALTY_COUNT_WEIGHTS))

    def draw(self, rng: random.Random) -> tuple[list[str], str]:
        """Return ``(categories, job_title)`` of one profile.

        ``categories`` holds the family and then 0 to 2 distinct specialties
        of it; the title is that of the first specialty, or the family's.
        """
        index = _pick(self._family_cumulative, rng)
        family = self._families[index]
        cumulative = self._specialty_cumulative[index]

        wanted = min(_pick(self._count_cumulative, rng), len(family.specialties))
        chosen: list[str] = []
        while len(chosen) < wanted:
            specialty = family.specialties[_pick(cumulative, rng)]
            if specialty not in chosen:
                chosen.append(specialty)

        job_title = title(chosen[0]) if chosen else family.title
        return [family.slug, *chosen], job_title


def _pick(cumulative: list[float], rng: random.Random) -> int:
    # The product can round up to the total itself; the last index takes it.
    index = bisect.bisect_right(cumulative, rng.random() * cumulative[-1])
    return min(index, len(cumulative) - 1)


def _check(families: tuple[Family, ...]) -> None:
    seen: set[str] = set()
    for family in families:
        if family.weight <= 0:
            raise ValueError(f"family {family.slug!r} has weight {family.weight}")
        for slug in (family.slug, *family.specialties):
            if not is_category(slug):
                raise ValueError(f"{slug!r} is not a valid category slug")
            if slug in seen:
                raise ValueError(f"{slug!r} appears twice in the taxonomy")
            seen.add(slug)
