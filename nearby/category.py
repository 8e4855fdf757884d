"""What a category is: a slug such as ``python-developer``.

A slug is 1 to 64 characters of lowercase ASCII letters and digits, in groups
joined by single hyphens: no leading, trailing or doubled hyphen.
"""

import re
from functools import lru_cache

CATEGORY_MAX_LENGTH = 64
CATEGORY_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@lru_cache(maxsize=65536)
def is_category(text: str) -> bool:
    """Tell whether ``text`` is a valid category slug."""
    return len(text) <= CATEGORY_MAX_LENGTH and bool(CATEGORY_PATTERN.fullmatch(text))
