print("gmemctl")
