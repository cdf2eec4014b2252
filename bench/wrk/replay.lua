-- Replays pre-built requests from a file; the benchmarks' one load generator.
--
-- Usage: wrk -t T -c C -d D -s replay.lua URL -- FILE T MODE
--   FILE  one request per line: METHOD <tab> PATH <tab> SIGNATURE or "-" <tab> BODY or "-"
--   T     the thread count again: thread i replays lines i, i+T, i+2T... so no two threads
--         send the same body (each body's nonce is used once)
--   MODE  "none"   ignore responses (cheapest; wrk still counts statuses > 399)
--         "status" count responses by status (201 new, 200 retry, 202 quarantined, other)
--         "items"  as "status", and count '"http_status":201' items in batch answers
-- Each thread loops over its share; "wrapped" counts how often it started over.
-- done() prints one line "BENCH_JSON {...}" for bench/loadgen.py.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function split_tab(line)
  local out = {}
  local start = 1
  for _ = 1, 3 do
    local i = string.find(line, "\t", start, true)
    if i == nil then
      return nil
    end
    out[#out + 1] = string.sub(line, start, i - 1)
    start = i + 1
  end
  out[#out + 1] = string.sub(line, start)
  return out
end

function init(args)
  local file = args[1]
  local nthreads = tonumber(args[2])
  local mode = args[3] or "none"
  reqs = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == tid then
      local f = split_tab(line)
      if f == nil then
        error("bad request line " .. i .. " in " .. file)
      end
      local headers = {}
      local body = nil
      if f[3] ~= "-" then
        headers["X-Agent-Signature"] = f[3]
      end
      if f[4] ~= "-" then
        headers["Content-Type"] = "application/json"
        body = f[4]
      end
      reqs[#reqs + 1] = wrk.format(f[1], f[2], headers, body)
    end
    i = i + 1
  end
  if #reqs == 0 then
    error("thread " .. tid .. " has no requests in " .. file)
  end
  idx = 0
  wrapped = 0
  c200 = 0
  c201 = 0
  c202 = 0
  cother = 0
  items = 0
  first_error = ""
  count_items = (mode == "items")
  if mode == "none" then
    response = nil
  end
end

function request()
  idx = idx + 1
  if idx > #reqs then
    idx = 1
    wrapped = wrapped + 1
  end
  return reqs[idx]
end

function response(status, headers, body)
  if status == 201 then
    c201 = c201 + 1
  elseif status == 200 then
    c200 = c200 + 1
  elseif status == 202 then
    c202 = c202 + 1
  else
    cother = cother + 1
    if first_error == "" then
      first_error = status .. " " .. string.sub(body or "", 1, 300)
    end
  end
  if count_items and body ~= nil then
    local _, n = string.gsub(body, '"http_status":201', "")
    items = items + n
  end
end

function done(summary, latency, requests)
  local t = {wrapped = 0, c200 = 0, c201 = 0, c202 = 0, cother = 0, items = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do
      t[k] = t[k] + (thread:get(k) or 0)
    end
  end
  local e = summary.errors
  local parts = {
    string.format('"duration_us":%d', summary.duration),
    string.format('"requests":%d', summary.requests),
    string.format('"bytes":%d', summary.bytes),
    string.format('"err_connect":%d', e.connect),
    string.format('"err_read":%d', e.read),
    string.format('"err_write":%d', e.write),
    string.format('"err_status":%d', e.status),
    string.format('"err_timeout":%d', e.timeout),
    string.format('"lat_mean_us":%.3f', latency.mean),
    string.format('"lat_max_us":%d', latency.max),
    string.format('"lat_p50_us":%d', latency:percentile(50)),
    string.format('"lat_p90_us":%d', latency:percentile(90)),
    string.format('"lat_p99_us":%d', latency:percentile(99)),
    string.format('"lat_p999_us":%d', latency:percentile(99.9)),
  }
  for k, v in pairs(t) do
    parts[#parts + 1] = string.format('"%s":%d', k, v)
  end
  local first = ""
  for _, thread in ipairs(threads) do
    local e1 = thread:get("first_error")
    if first == "" and e1 ~= nil and e1 ~= "" then
      first = e1
    end
  end
  local escaped = string.gsub(first, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  parts[#parts + 1] = '"first_error":"' .. escaped .. '"'
  io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end
