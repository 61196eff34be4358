"""In CI the real services must be there: these fail (not skip) without them."""


def test_database_is_postgres_in_ci(postgres):
    from django.db import connection

    assert connection.vendor == "postgresql"


def test_redis_answers(redis_url):
    import redis

    assert redis.Redis.from_url(redis_url).ping() is True
