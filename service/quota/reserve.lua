-- Check and count one request against a developer's monthly quota, atomically.
-- KEYS[1]  the developer's counter for one month, e.g. dicom-api:{dev:42}:quota:2026-11
-- KEYS[2]  the developer's set of deleted API key ids, e.g. dicom-api:{dev:42}:revoked-keys
-- ARGV[1]  the monthly limit
-- ARGV[2]  seconds the counter lives (until a day after its month is over, by the service's
--          clock, so that the service and never Redis's own clock decides the month)
-- ARGV[3]  the month's count from the durable usage record, or "" if the caller has not read it
-- ARGV[4]  the id of the API key making the request
-- Returns {granted (1/0), used}; {-2, 0} when the key has been deleted; or {-1, 0} when the
-- counter is missing and ARGV[3] is "": the caller then reads the durable record (and checks
-- the key there) and calls again, so losing Redis never resets a quota.
if redis.call('SISMEMBER', KEYS[2], ARGV[4]) == 1 then
  return {-2, 0}
end
local used = redis.call('GET', KEYS[1])
if not used then
  if ARGV[3] == '' then
    return {-1, 0}
  end
  redis.call('SET', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  used = ARGV[3]
end
used = tonumber(used)
if used >= tonumber(ARGV[1]) then
  return {0, used}
end
return {1, redis.call('INCR', KEYS[1])}
