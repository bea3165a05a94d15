"""Step 11, E2E correctness: the local plugin's tokens against a ground-truth (upstream) server.

One job per module:

- ``png``: a small pure-Python PNG encoder (zlib + struct) and its reader for tests
- ``images``: the images of the built-in multimodal prompts (shapes, gradients, quadrants)
- ``prompts``: the built-in prompts (t1..t5, m1..m5) and ``--e2e-prompts FILE`` sets
- ``generation``: the record of one chat completion (token ids, token strings, top logprobs)
- ``client``: an OpenAI-compatible client (requests) with bounded retries on connection errors
- ``compare``: MATCH / near-tie / divergence (early or late) of two generations
- ``results``: saved GT and local generations under ``reports/<model>/e2e/`` and the phases
- ``jsonfile``: reading a JSON file the user names, with one-line errors
- ``gt_config``: the ``--gt-config`` JSON file, validated (no SSH needed to read it)
- ``serve``: the argv of a ground-truth ``vllm`` server
- ``ssh``: paramiko connections with checked host keys and one-line errors
- ``remote``: a process on another machine (start, status, logs, stop) and the remote GT server
- ``local_gt``: a GT server started on this machine from an upstream env (``--gt-python``)
- ``health``: waiting, bounded, for ``/health``
- ``runner``: one prompt through the selected phase; what step 11's tests call
"""
