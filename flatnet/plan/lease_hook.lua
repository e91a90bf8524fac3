-- flatnet lease hook for dnsmasq --dhcp-luascript (dnsmasq(8)).
-- Copied by flatnet-network from the flatnet package (plan/lease_hook.lua);
-- never edit the copy: it is rewritten.
--
-- dnsmasq loads this file once, in its helper process (helper.c
-- create_helper), and calls lease(action, t) for every add/old/del
-- event: no fork, no exec. It appends the same record as the sh hook,
-- "\n<action> <mac> <ip>\n", with ONE O_APPEND write(2) (the journal is
-- opened per event, so a rotated journal is followed like sh's ">>").
-- A record that cannot be written adds one to the loss counter (line 1
-- of <journal>.lost, rewritten in place), as the sh hook does.
--
-- dnsmasq calls lease() with lua_call, not lua_pcall: an error escaping
-- it kills the helper, silently (no more events, dnsmasq serves on).
-- So the body runs under pcall and errors go to <journal>.hookerr
-- (bounded), which flatnet-network reports.
-- No init(): dnsmasq runs none for a Lua script; flatnet passes
-- --dhcp-authoritative instead (see doc/dhcp.md).

local EVENTS = os.getenv("FLATNET_EVENTS") or ""
local BASE = EVENTS:match("^(/.+)%.events$")
local ERRORS = BASE and (BASE .. ".hookerr")
local LOST = BASE and (BASE .. ".lost")
local ERRORS_MAX = 65536
local MAC = "^%x%x:%x%x:%x%x:%x%x:%x%x:%x%x$"
local ACTIONS = { add = true, old = true, del = true }

local function octet_ok(text)
  if text == "0" then
    return true
  end
  return text:match("^[1-9]%d?%d?$") ~= nil and tonumber(text) <= 255
end

-- four decimal octets 0-255 without leading zeros (what inet_pton takes)
local function ipv4_ok(text)
  if type(text) ~= "string" or #text > 15 then
    return false
  end
  local a, b, c, d = text:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a ~= nil and octet_ok(a) and octet_ok(b) and octet_ok(c)
    and octet_ok(d)
end

-- one line, printable ASCII only, at most 300 bytes
local function printable(value)
  return (tostring(value):gsub("[^%w%p ]", "?")):sub(1, 300)
end

local function note(message)
  if not ERRORS then
    return
  end
  local f = io.open(ERRORS, "a")
  if not f then
    return
  end
  if f:seek("end") < ERRORS_MAX then
    f:write(os.date("!%Y-%m-%dT%H:%M:%SZ "), printable(message), "\n")
  end
  f:close()
end

-- line 1 of the loss file + 1, in place (no truncation: no new block)
local function count_lost()
  local f = io.open(LOST, "r+") or io.open(LOST, "w")
  if not f then
    return
  end
  local digits = (f:read("l") or ""):match("^%s*(%d+)%s*$") or "0"
  local n = #digits < 10 and tonumber(digits) or 0
  f:seek("set", 0)
  f:write(string.format("%12d\n", n + 1))
  f:close()
end

local function record(action, mac, ip)
  local f = io.open(EVENTS, "a")
  if f then
    -- fully buffered: the record leaves in one write(2) at close
    f:write("\n", action, " ", mac, " ", ip, "\n")
    if f:close() then
      return
    end
  end
  count_lost()
end

local function handle(action, t)
  if not ACTIONS[action] then
    return
  end
  if not BASE then
    error("FLATNET_EVENTS is not an absolute path ending in .events")
  end
  local mac, ip = t.mac_address, t.ip_address
  if type(mac) ~= "string" or not mac:match(MAC) or not ipv4_ok(ip) then
    error(action .. ": not an Ethernet MAC and IPv4 address: "
      .. printable(mac) .. " " .. printable(ip))
  end
  record(action, mac, ip)
end

function lease(action, t)
  local ok, err = pcall(handle, action, t)
  if not ok then
    pcall(note, err)
  end
end
