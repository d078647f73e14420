"""Several vbank nodes as one branch: the queue and tellers in Redis, messages between nodes.

On one node (no ``--redis``) the queue is ``LocalQueue``, the pure ``domain.queue`` behind the
same asynchronous interface, and nothing here talks to another process. With ``--redis``,
``RedisQueue`` keeps the queues, tickets and teller states in Redis (assignment is one Lua
script, so two tellers on two nodes never get the same customer) and ``Cluster`` carries
what one node has to tell another: a message for a person signed in there, a teller's
command for the node that hosts their call, a queue that changed, the lobby's avatars.
A session stays on the node the customer joined: its media, recording and business flow
run there, and a teller signed in elsewhere reaches it through their own node.
"""
