pub fn _demo(){}
