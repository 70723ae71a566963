{
  "targets": [
    {
      "target_name": "uffd",
      "sources": ["uffd.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags!": ["-O3"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"]
    }
  ]
}
