print("finch")
