-- wrk script for the memory phases of the benchmark (bench/wrk.py): each
-- connection cycles through the paths given after `--` (`wrk ... URL -- /a /b`),
-- so one run mixes every request case. Reports like wrk_report.lua.

dofile("bench/wrk_report.lua")

local requests = {}
local next_index = 0

function init(args)
  for i, path in ipairs(args) do
    requests[i] = wrk.format(nil, path)
  end
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
