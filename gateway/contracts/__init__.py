"""The data the stages hand each other, and nothing else (no I/O, no logic beyond a property):

    request   `ParsedRequest`: what the client asked, frozen (the parse stage's output)
    identity  `Principal` (an API key), `VirtualKey`, `StoredPrompt`, the `Resolver` protocol
    plan      `Leaf` and `Branch`: the routing plan's tree (the plan stage's output)
    answer    `JSONAnswer`, `StreamAnswer`, `RawAnswer`: what an attempt returns
    outcome   `Outcome`: what happened to a request, written by execute and relay, read by
              the recorders
"""
