"""Time as the Lua scripts see it: integer microseconds, from the Redis server unless a test injects a clock."""

from collections.abc import Callable

Clock = Callable[[], float]  # seconds since the epoch


def seconds_to_us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def now_arg(clock: Clock | None) -> str:
    """The script's `now` argument: '' tells it to read the Redis server's `TIME` (one clock for all)."""
    return "" if clock is None else str(seconds_to_us(clock()))


# The first lines of every script: `now`, in µs, from ARGV[n] or the server's clock.
LUA_NOW = """
local now
if ARGV[{index}] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
else
  now = tonumber(ARGV[{index}])
end
"""
