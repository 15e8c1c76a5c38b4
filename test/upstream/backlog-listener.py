# A TCP listener on 127.0.0.1 that never accepts, with the smallest backlog:
# once one connection fills the accept queue, the kernel drops further SYNs,
# so a connect() to it hangs until the client's own timeout -- a real TCP
# timeout on loopback. Prints the port; exits when stdin closes (the test ended).
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
s.listen(0)
print(s.getsockname()[1], flush=True)
sys.stdin.read()
