"""The West Tek container images: Dockerfiles, their build (`make images`) and their names."""
