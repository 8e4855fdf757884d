-- One page of a search of nearby's Redis GEO indexes, in one round trip.
--
-- KEYS: the meta hash, the categories set, then for each category its GEO
-- set, its info hash and its beyond set.
-- ARGV: shape ('radius', 'nearest' or 'bbox'); longitude and latitude of the
-- centre; the radius in metres, or the box's width and height in metres;
-- members to fetch from each category; the scan cap (0: none); members a
-- nearest search needs; the most members its categories may hold for it to
-- sort them at once, unprobed; radii in metres of the circles a nearest
-- search probes, comma-separated (empty: none); then the category names.
--
-- Replies {'not_ready'}, {'unknown', category}, {'too_large'}, or
-- {'ok', refreshed_at, beyond, radius, found_1, infos_1, found_2, ...}: the
-- index's refresh time, how many profiles of the categories lie beyond the
-- latitude limit, the radius searched (a nearest search's probed one), and
-- for each category its nearest members, nearest first by Redis's rounded
-- positions, and their info entries.

local HMGET_BATCH = 1000

local shape = ARGV[1]
local count = tonumber(ARGV[6])
local max_scan = tonumber(ARGV[7])
local needed = tonumber(ARGV[8])
local direct = tonumber(ARGV[9])
local probes = ARGV[10]
local categories = (#KEYS - 2) / 3

local function geosearch(key, area, ...)
    local args = {'GEOSEARCH', key, 'FROMLONLAT', ARGV[2], ARGV[3]}
    for _, value in ipairs(area) do
        args[#args + 1] = value
    end
    for _, value in ipairs({...}) do
        args[#args + 1] = value
    end
    return redis.call(unpack(args))
end

-- Distinct members of every category within area, counted up to limit.
local function distinct_members(area, limit)
    local seen, distinct = {}, 0
    for i = 1, categories do
        for _, member in ipairs(geosearch(KEYS[3 * i], area, 'COUNT', limit, 'ANY')) do
            if not seen[member] then
                seen[member] = true
                distinct = distinct + 1
            end
        end
        if distinct >= limit then
            return distinct
        end
    end
    return distinct
end

local refreshed_at = redis.call('HGET', KEYS[1], 'refreshed_at')
if not refreshed_at then
    return {'not_ready'}
end

local size, beyond = 0, 0
for i = 1, categories do
    if redis.call('SISMEMBER', KEYS[2], ARGV[10 + i]) == 0 then
        return {'unknown', ARGV[10 + i]}
    end
    size = size + redis.call('ZCARD', KEYS[3 * i])
    beyond = beyond + redis.call('SCARD', KEYS[3 * i + 2])
end

local radius = ARGV[4]
local area
if shape == 'bbox' then
    area = {'BYBOX', ARGV[4], ARGV[5], 'm'}
else
    area = {'BYRADIUS', radius, 'm'}
end

if shape ~= 'nearest' and max_scan > 0 and size > max_scan then
    if distinct_members(area, max_scan + 1) > max_scan then
        return {'too_large'}
    end
end

if shape == 'nearest' and probes ~= '' and size > direct then
    for probe in string.gmatch(probes, '[^,]+') do
        if distinct_members({'BYRADIUS', probe, 'm'}, needed) >= needed then
            radius = probe
            break
        end
    end
    area = {'BYRADIUS', radius, 'm'}
end

local reply = {'ok', refreshed_at, beyond, radius}
for i = 1, categories do
    local found = geosearch(KEYS[3 * i], area, 'ASC', 'COUNT', count)
    local infos = {}
    for first = 1, #found, HMGET_BATCH do
        local members = {}
        for j = first, math.min(first + HMGET_BATCH - 1, #found) do
            members[#members + 1] = found[j]
        end
        local batch = redis.call('HMGET', KEYS[3 * i + 1], unpack(members))
        for _, info in ipairs(batch) do
            infos[#infos + 1] = info
        end
    end
    reply[#reply + 1] = found
    reply[#reply + 1] = infos
end
return reply
