module example.com/mmhash-go-hasher

go 1.19
