# Runs calls of RG's Ruby client (the lead_router gem) for tests/integration/test_ruby_client.py.
#
# Reads a JSON plan on stdin: {"host", "user", "token", "calls": [{"method", "args"}, ...]}, makes
# each call in order with one LeadRouter client, and prints one JSON list on stdout: per call,
# {"status", "body"} of the answer, plus "error" when the client raised (it raises
# LeadRouter::Exception for every failure, error statuses included).

require "json" # the client calls #to_json but never requires json itself
require "lead_router"

plan = JSON.parse($stdin.read)
client = LeadRouter.new(plan.fetch("host"), plan.fetch("user"), plan.fetch("token"))
outcomes = plan.fetch("calls").map do |call|
  response = client.public_send(call.fetch("method"), *call.fetch("args"))
  { "status" => response.code, "body" => response.body }
rescue LeadRouter::Exception => e
  { "status" => e.http_code, "body" => e.http_body, "error" => e.to_s }
end
puts JSON.generate(outcomes)
