-- Give back one unit reserved by reserve.lua for a request that then failed.
-- KEYS[1]  the developer's counter for one month
local used = redis.call('GET', KEYS[1])
if used and tonumber(used) > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
