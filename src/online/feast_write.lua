-- fsctl's write of one Feast hash (SPEC §3.4): KEYS[1] is the entity's hash, ARGV is
--   pexpire_ms (0: no expiry), n, then n entries, each
--   ts_field, seconds, nanos, ts_bytes, ndeps, ndeps x (ts_field, seconds, nanos),
--   nfields, nfields x (field, value).
-- An entry is written (HSET ts_field ts_bytes and its fields) unless the stored ts_field is
-- at least as new (Feast's rule: a row never replaces a newer one, e.g. from `feast push`),
-- or a dependency's stored time is newer than the one the entry was built from (a
-- precomputed vector built from rows that a push has since replaced). The entries written go
-- in one HSET; the key's expiry is set when anything was written. Returns the entries written.
local function stamp(b)
  if not b then return nil end
  local s, n, i = 0, 0, 1
  while i <= #b do
    local tag = string.byte(b, i)
    i = i + 1
    local v, m = 0, 1
    repeat
      local c = string.byte(b, i)
      i = i + 1
      v = v + (c % 128) * m
      m = m * 128
    until c < 128
    -- Negative seconds (before 1970) come as 64-bit two's complement.
    if v >= 9223372036854775808 then v = v - 18446744073709551616 end
    if tag == 8 then s = v elseif tag == 16 then n = v end
  end
  return s, n
end
local function cmp(b, s, n)
  local bs, bn = stamp(b)
  if bs == nil then return nil end
  if bs ~= s then return bs > s and 1 or -1 end
  if bn ~= n then return bn > n and 1 or -1 end
  return 0
end
local key = KEYS[1]
local ttl = tonumber(ARGV[1])
local i = 3
local out = {}
local written = 0
for _ = 1, tonumber(ARGV[2]) do
  local field, s, n, bytes = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
  local ndeps = tonumber(ARGV[i + 4])
  i = i + 5
  local c = cmp(redis.call('HGET', key, field), s, n)
  local ok = c == nil or c < 0
  for _ = 1, ndeps do
    if ok then
      local d = cmp(redis.call('HGET', key, ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]))
      if d ~= nil and d > 0 then ok = false end
    end
    i = i + 3
  end
  local nf = tonumber(ARGV[i])
  i = i + 1
  if ok then
    out[#out + 1] = field
    out[#out + 1] = bytes
    for f = 0, nf * 2 - 1 do out[#out + 1] = ARGV[i + f] end
    written = written + 1
  end
  i = i + nf * 2
end
-- One HSET for every entry written, in chunks that stay under Lua's stack limit.
local chunk = 4000
for from = 1, #out, chunk do
  redis.call('HSET', key, unpack(out, from, math.min(from + chunk - 1, #out)))
end
if written > 0 and ttl > 0 then redis.call('PEXPIRE', key, ttl) end
return written
