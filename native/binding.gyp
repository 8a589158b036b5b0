{
  "targets": [
    {
      "target_name": "sendfile",
      "sources": ["sendfile.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    },
    {
      "target_name": "hash",
      "sources": ["hash.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    },
    {
      "target_name": "memory",
      "sources": ["memory.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
