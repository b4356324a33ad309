-- wrk: send each request with the next token from $TOKENS_FILE (one per line), round robin.
local tokens = {}
local i = 0

init = function(args)
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    tokens[#tokens + 1] = "Bearer " .. line
  end
  -- Threads start at different offsets so they do not send the same token together.
  i = math.random(#tokens)
end

request = function()
  i = i % #tokens + 1
  return wrk.format("GET", wrk.path, { ["Authorization"] = tokens[i] })
end
