"""好差评: the unified evaluation centre (rateable services, ratings, cases, statistics)."""
