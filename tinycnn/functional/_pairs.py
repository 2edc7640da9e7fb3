def pair(value) -> tuple[int, int]:
    """3 -> (3, 3); (3, 2) -> (3, 2)."""
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))
