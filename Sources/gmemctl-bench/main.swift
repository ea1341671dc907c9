print("gmemctl-bench")
