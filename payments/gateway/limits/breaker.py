"""The circuit breaker per provider, in Redis so every worker shares it; each transition is one Lua script."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from payments.gateway.base import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderRateLimited,
    ProviderServerError,
    ProviderUnavailable,
)
from payments.gateway.limits import hooks
from payments.gateway.limits.clock import LUA_NOW, Clock, now_arg, seconds_to_us

logger = logging.getLogger(__name__)
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
UNKNOWN = "unknown"  # state() when Redis cannot be reached
# Failures that say the provider is unwell. A decline, an invalid request or an idempotency conflict
# is the provider answering sensibly: a success as far as the breaker is concerned.
UNHEALTHY_ERRORS = (
    ProviderRateLimited,
    ProviderUnavailable,
    ProviderServerError,
    ProviderOutcomeUnknown,
    ProviderBadResponse,
)
# A worker refused while another one probes asks again this soon: a probe is one provider call, so
# its answer comes long before the probe's lease (which only covers a worker killed mid-probe) ends.
PROBE_WAIT_SECONDS = 1.0
# An open breaker outlives its deadlines by this much: it must still be there, and half-open, when
# the next call comes after a quiet night, or every worker would rush a failing provider at once.
IDLE_STATE_TTL_SECONDS = 24 * 3600

# KEYS[1]: the breaker (state, open_until, probe_until); KEYS[2]: its calls, a counter per outcome and
# second. ARGV: action (allow, success, failure, trip, reset, state), now in µs or '' for the Redis
# server's clock, window in seconds, minimum calls, failure rate, how long it opens (µs; the trip's
# length for 'trip'), the probe's lease (µs), how soon a worker refused during a probe asks again (µs),
# how long an idle open breaker is kept past its deadlines (ms).
# Returns {state before, state after, allowed (1 or 0), retry in µs}.
_BREAKER = (
    LUA_NOW.format(index=2)
    + """
local action = ARGV[1]
local window, min_calls, failure_rate = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local open_for, probe_lease, probe_wait = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])

local stored = redis.call('HMGET', KEYS[1], 'state', 'open_until', 'probe_until')
local before = stored[1] or 'closed'
local open_until, probe_until = tonumber(stored[2] or '0'), tonumber(stored[3] or '0')
local state = before
-- Past its cool-off an open breaker is half-open, whether or not a worker has asked since.
if state == 'open' and now >= open_until then state = 'half_open' end

local function save(new_state, new_open_until, new_probe_until)
  redis.call('HSET', KEYS[1], 'state', new_state, 'open_until', string.format('%.0f', new_open_until),
    'probe_until', string.format('%.0f', new_probe_until))
  local deadline = math.max(new_open_until, new_probe_until, now)
  redis.call('PEXPIRE', KEYS[1], math.ceil((deadline - now) / 1000) + tonumber(ARGV[9]))
end
local function open(until_at)
  save('open', until_at, 0)
  redis.call('DEL', KEYS[2])  -- when it closes again, it starts from a fresh window
  return {before, 'open', 0, until_at - now}
end
local function close()
  redis.call('DEL', KEYS[1], KEYS[2])
  return {before, 'closed', 1, 0}
end
-- Count this call in its second, forget the seconds that left the window, return the window's totals.
local function count(outcome)
  local second = math.floor(now / 1000000)
  redis.call('HINCRBY', KEYS[2], outcome .. ':' .. string.format('%d', second), 1)
  redis.call('PEXPIRE', KEYS[2], (window + 1) * 1000)
  local fields = redis.call('HGETALL', KEYS[2])
  local calls, failures, stale = 0, 0, {}
  for i = 1, #fields, 2 do
    local kind, at = string.match(fields[i], '^(%a+):(%d+)$')
    if tonumber(at) <= second - window then
      stale[#stale + 1] = fields[i]
    else
      calls = calls + tonumber(fields[i + 1])
      if kind == 'failure' then failures = failures + tonumber(fields[i + 1]) end
    end
  end
  if #stale > 0 then redis.call('HDEL', KEYS[2], unpack(stale)) end
  return calls, failures
end

if action == 'allow' then
  if state == 'closed' then return {before, state, 1, 0} end
  if state == 'open' then return {before, state, 0, open_until - now} end
  if probe_until > now then return {before, state, 0, math.min(probe_until - now, probe_wait)} end
  save('half_open', open_until, now + probe_lease)  -- this caller is the probe
  return {before, 'half_open', 1, 0}
elseif action == 'success' then
  if state == 'half_open' then return close() end
  if state == 'closed' then count('success') end
  return {before, state, 1, 0}
elseif action == 'failure' then
  if state == 'half_open' then return open(now + open_for) end
  if state == 'closed' then
    local calls, failures = count('failure')
    if calls >= min_calls and failures >= failure_rate * calls then return open(now + open_for) end
  end
  return {before, state, 0, 0}
elseif action == 'trip' then
  if state == 'open' then return open(math.max(now + open_for, open_until)) end
  return open(now + open_for)
elseif action == 'reset' then
  return close()
end
return {before, state, 0, 0}
"""
)


class CircuitBreaker:
    """
    One breaker per provider, shared by every process through Redis.

    Closed: every call goes, and each outcome is counted per second. It opens when at least
    `failure_rate` of at least `min_calls` calls in the last `window_seconds` failed, and stays open
    `open_seconds`. Then it is half-open: one call at a time (across all workers) may probe; a probe
    success closes it, a probe failure opens it again for `open_seconds`. A probe that never reports
    (its worker was killed) frees the slot after `probe_timeout_seconds`.

    After every call `allow()` let through, report it once: `record_outcome(error=…)`, or
    `record_success()` / `record_failure()` / `trip()` directly. A probe that reports nothing holds the
    half-open breaker shut until its lease ends. In half-open the first outcome reported decides,
    the probe's or that of a call which began before the breaker opened: both are fresh news.
    """

    def __init__(
        self,
        *,
        redis_client: redis.Redis,
        provider: str,
        failure_rate: float,
        min_calls: int,
        window_seconds: int,
        open_seconds: float,
        probe_timeout_seconds: float,
        auth_trip_seconds: float,
        clock: Clock | None = None,
    ) -> None:
        self.provider = provider
        self.auth_trip_seconds = auth_trip_seconds
        self._keys = [f"breaker:provider:{provider}", f"breaker:provider:{provider}:calls"]
        self._failure_rate = float(failure_rate)
        self._min_calls = min_calls
        self._window_seconds = window_seconds
        self._open_seconds = open_seconds
        self._probe_timeout_seconds = probe_timeout_seconds
        self._clock = clock
        self._script = redis_client.register_script(_BREAKER)

    def allow(self) -> tuple[bool, float]:
        """
        Ask whether a call may go now: (True, 0.0), or (False, seconds until it is worth asking again).

        Redis unreachable: (True, 0.0). The breaker only spares a sick provider a storm; each row's
        retries are already spaced by the backoff policy, so failing open costs a few more failed
        attempts, while failing closed would stop every payment for as long as Redis is away.
        """
        answer = self._run("allow")
        if answer is None:
            return True, 0.0
        return answer.allowed, answer.retry_in

    def record_success(self) -> None:
        """The provider answered (a decline or a 4xx counts: it is healthy). A probe success closes it."""
        self._run("success")

    def record_failure(self) -> None:
        """The provider failed (5xx, timeout, connection failure, 429). May open the breaker."""
        self._run("failure")

    def record_outcome(self, *, error: BaseException | None) -> None:
        """Record a call by what it raised (None: it succeeded); an authentication error trips the breaker."""
        if isinstance(error, ProviderAuthError):
            # Stops the line and alerts: no retry can succeed until someone fixes the key.
            logger.error(
                "provider refused our credentials, calls stop for %ss: %s", self.auth_trip_seconds, self.provider
            )
            self.trip(self.auth_trip_seconds)
        elif isinstance(error, UNHEALTHY_ERRORS):
            self.record_failure()
        elif error is None or isinstance(error, ProviderError):
            self.record_success()
        # Anything else is our own bug, not the provider's health: nothing to record.

    def trip(self, seconds: float) -> None:
        """
        Open the breaker for `seconds` whatever its state (our key was refused: every call would fail
        alike). Never shortens a longer cool-off already running. Redis unreachable: logged, no raise.
        """
        self._run("trip", open_seconds=seconds)

    def reset(self) -> None:
        """Close the breaker and forget its window (an operator fixed the cause)."""
        self._run("reset")

    def state(self) -> str:
        """Return "closed", "open" or "half_open" (open past its cool-off); "unknown" without Redis."""
        answer = self._run("state")
        return UNKNOWN if answer is None else answer.state

    def _run(self, action: str, *, open_seconds: float | None = None) -> _BreakerAnswer | None:
        """Run one action in Redis; None if Redis could not be reached (never raises: see `allow`)."""
        args = [
            action,
            now_arg(self._clock),
            self._window_seconds,
            self._min_calls,
            repr(self._failure_rate),
            seconds_to_us(self._open_seconds if open_seconds is None else open_seconds),
            seconds_to_us(self._probe_timeout_seconds),
            seconds_to_us(PROBE_WAIT_SECONDS),
            IDLE_STATE_TTL_SECONDS * 1000,
        ]
        try:
            before, after, allowed, retry_us = self._script(keys=self._keys, args=args)
        except redis.RedisError as exc:
            logger.warning("provider circuit breaker unavailable, letting calls through: %s", type(exc).__name__)
            hooks.redis_unavailable(component="circuit_breaker")
            return None
        before, after = before.decode(), after.decode()
        if before != after and action != "state":
            log = logger.warning if after == OPEN else logger.info
            log("provider circuit breaker %s -> %s provider=%s on=%s", before, after, self.provider, action)
            hooks.breaker_changed(provider=self.provider, from_state=before, to_state=after)
        return _BreakerAnswer(state=after, allowed=bool(allowed), retry_in=int(retry_us) / 1_000_000)


@dataclass(frozen=True)
class _BreakerAnswer:
    state: str
    allowed: bool
    retry_in: float
